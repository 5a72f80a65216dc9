/**
 * The IETF "Resumable Uploads for HTTP" draft, interop versions 3 to 8, as one rule table: each
 * row says what a version switches on, so the handlers never compare version numbers. A request
 * speaks the draft when it carries `Upload-Draft-Interop-Version` with a version we support (and
 * the `ietfDraft` option is on); anything else is tus v1, byte for byte as before.
 *
 *   3 = draft -01 (Upload-Incomplete), 4 = -02 (Upload-Complete), 5 = -03 (HEAD 200, 104 progress),
 *   6 = -04/-05 (application/partial-upload, Upload-Limit `expires`, Upload-Length, problem types),
 *   7 = -06..-08 (`max-age`, Upload-Complete required on PATCH and in responses),
 *   8 = -09..-11 (Upload-Limit in HEAD, Accept-Patch in OPTIONS, 410 for empty appends to a completed upload).
 */
import type { FastifyRequest } from 'fastify'
import { header } from '../headers.js'

export type InteropVersion = 3 | 4 | 5 | 6 | 7 | 8

export const INTEROP_VERSIONS: readonly InteropVersion[] = [3, 4, 5, 6, 7, 8]

export interface VersionRules {
  version: InteropVersion
  /** The completion field: `Upload-Incomplete` (3, inverted) or `Upload-Complete`. */
  completionField: 'upload-incomplete' | 'upload-complete'
  /** PATCH must carry the completion field (7+); before, its absence means "complete". */
  completionRequiredOnAppend: boolean
  /** PATCH must be `Content-Type: application/partial-upload` (6+). */
  partialUploadType: boolean
  /** Status of a successful HEAD: 204 only in 3/4, 200 allowed from 5. */
  headStatus: 200 | 204
  /** 104s with `Upload-Offset` while a body streams in (5+). */
  progressInformational: boolean
  /** `Upload-Limit` exists (6+). */
  uploadLimit: boolean
  /** The lifetime key of `Upload-Limit`: `expires` (6) or `max-age` (7+). */
  lifetimeKey: 'expires' | 'max-age' | undefined
  /** `Upload-Length` in HEAD responses when known (6+). */
  lengthInHead: boolean
  /** `Upload-Limit` in HEAD responses (6+; MUST from 8). */
  limitInHead: boolean
  /** `application/problem+json` problem types of the draft (6+). */
  problemTypes: boolean
  /** The `inconsistent-upload-length` problem type (7+). */
  inconsistentLengthProblem: boolean
  /** Every non-completing creation/append response carries `Upload-Complete: ?0` (7+). */
  completeOnEveryResponse: boolean
  /** HEAD and DELETE carrying upload headers are a 400 (3-6). */
  rejectUploadHeadersOnHeadDelete: boolean
  /** OPTIONS lists `Accept-Patch: application/partial-upload` (8). */
  acceptPatch: boolean
  /**
   * An append to a completed upload: `completed-upload` 400 (3-7), or (8, -10/-11) an empty one is
   * 410 `completed-upload` and a non-empty one 400 `inconsistent-upload-length`.
   */
  completedAppend: 'completed-upload' | 'gone-or-inconsistent'
  /** Status of a successful append that does not complete the upload: 201 in the text of 3-6, 204 from 7. */
  appendStatus: 201 | 204
  /** An append past the upload's length makes the upload invalid: it is removed (8, -08's text kept). */
  invalidateOnOverrun: boolean
}

function rules (version: InteropVersion): VersionRules {
  return Object.freeze({
    version,
    completionField: version === 3 ? 'upload-incomplete' : 'upload-complete',
    completionRequiredOnAppend: version >= 7,
    partialUploadType: version >= 6,
    headStatus: version <= 4 ? 204 : 200,
    progressInformational: version >= 5,
    uploadLimit: version >= 6,
    lifetimeKey: version === 6 ? 'expires' : version >= 7 ? 'max-age' : undefined,
    lengthInHead: version >= 6,
    limitInHead: version >= 6,
    problemTypes: version >= 6,
    inconsistentLengthProblem: version >= 7,
    completeOnEveryResponse: version >= 7,
    rejectUploadHeadersOnHeadDelete: version <= 6,
    acceptPatch: version >= 8,
    completedAppend: version >= 8 ? 'gone-or-inconsistent' : 'completed-upload',
    appendStatus: version <= 6 ? 201 : 204,
    invalidateOnOverrun: version >= 8
  } satisfies VersionRules)
}

export const VERSION_RULES: Readonly<Record<InteropVersion, VersionRules>> = Object.freeze({
  3: rules(3), 4: rules(4), 5: rules(5), 6: rules(6), 7: rules(7), 8: rules(8)
})

const draftRequests = new WeakMap<FastifyRequest, VersionRules>()

/**
 * Marks `request` as a draft request when it names a supported interop version (an exact
 * integer, as the draft's clients send it) and returns its rules; `undefined` means tus v1.
 */
export function detectDraft (request: FastifyRequest, enabled: boolean): VersionRules | undefined {
  if (!enabled) return undefined
  const value = header(request.headers, 'upload-draft-interop-version')?.trim()
  if (value === undefined || !/^[3-8]$/.test(value)) return undefined
  const found = VERSION_RULES[Number(value) as InteropVersion]
  draftRequests.set(request, found)
  return found
}

/** The rules of a request marked by `detectDraft`, or `undefined` for tus v1. */
export function draftRules (request: FastifyRequest): VersionRules | undefined {
  return draftRequests.get(request)
}
