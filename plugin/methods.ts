/**
 * The honest 405: which error a request gets when its route has no handler for its method. The
 * `Allow` header (set by the route) lists what the URL does support; the code names the reason.
 */
import * as errors from './errors.js'
import type { ResolvedOptions } from './options.js'

/**
 * `overridden`: the method came from `X-HTTP-Method-Override` (that header named a method the URL
 * does not serve). Otherwise GET and DELETE say whether an option switched them off or the store
 * cannot do them; any other method is simply not served here.
 */
export function methodNotAllowed (options: Pick<ResolvedOptions, 'disableDownload' | 'disableTermination'>, method: string, overridden: boolean): Error {
  if (overridden) return new errors.InvalidMethodOverride()
  if (method === 'GET' && options.disableDownload) return new errors.DownloadDisabled()
  if (method === 'DELETE' && options.disableTermination) return new errors.TerminationDisabled()
  return new errors.MethodNotSupported(method)
}
