/**
 * tusd's file hooks (`-hooks-dir`): for each event, the executable named after the hook type
 * (`<dir>/pre-create` …) runs with the directory as its working directory, the `HookRequest`
 * JSON on stdin and `TUS_ID`, `TUS_SIZE`, `TUS_OFFSET` in its environment. Its stdout, if not
 * empty, is the JSON `HookResponse`; its stderr goes to the server's stderr. A missing file
 * skips the hook; a non-zero exit is an error. As in tusd, there is no time limit.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { emptyHookResponse, parseHookResponse, type HookRequest, type HookResponse, type HookTransport } from './protocol.js'

export interface FileHookOptions {
  directory: string
  /** Where the scripts' stderr goes. Default: the server's stderr. */
  stderr?: 'inherit' | 'ignore'
}

export class FileHookTransport implements HookTransport {
  readonly directory: string
  readonly #stderr: 'inherit' | 'ignore'

  constructor (options: FileHookOptions) {
    this.directory = options.directory
    this.#stderr = options.stderr ?? 'inherit'
  }

  async invoke (hook: HookRequest): Promise<HookResponse> {
    const upload = hook.Event.Upload
    const path = join(this.directory, hook.Type)
    const output = await new Promise<string | undefined>((resolve, reject) => {
      const child = spawn(path, [], {
        cwd: this.directory,
        env: { ...process.env, TUS_ID: upload.ID, TUS_SIZE: String(upload.Size), TUS_OFFSET: String(upload.Offset) },
        stdio: ['pipe', 'pipe', this.#stderr]
      })
      let stdout = ''
      child.stdout.setEncoding('utf8')
      child.stdout.on('data', (chunk: string) => { stdout += chunk })
      child.once('error', (err: NodeJS.ErrnoException) => {
        // no such hook: the event is not handled
        if (err.code === 'ENOENT') resolve(undefined)
        else reject(new Error(`hook ${path} could not be run: ${err.message}`, { cause: err }))
      })
      child.once('close', (code, signal) => {
        if (code === 0) resolve(stdout)
        else reject(new Error(`unexpected return code ${code ?? signal ?? '?'} from hook ${path}: ${stdout}`))
      })
      // a script that does not read its stdin must not crash the server
      child.stdin.on('error', () => {})
      child.stdin.end(JSON.stringify(hook))
    })
    return output === undefined || output === '' ? emptyHookResponse() : parseHookResponse(output)
  }
}
