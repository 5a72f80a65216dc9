/**
 * The route schemas: TypeBox descriptions of what each tus route takes and answers, for both
 * dialects (tus 1.0.0 and the IETF draft share the routes). They give the handlers typed headers
 * (through the TypeBox type provider) and describe the routes to OpenAPI (@fastify/swagger picks
 * them up when the application registers it; the plugin never imports it).
 *
 * They describe; they do not decide. A request is never refused by a schema: validation is
 * attached to the request (`attachValidation`), and the precise checks (plugin/checks.ts, the
 * handlers) answer as the protocol asks, in its order: 412 with `Tus-Version`, 415, or a 400 with
 * our code, as problem+json for the draft. Response schemas are documentation only: they are never
 * compiled into serializers (`describeOnly`), so bodies (errors, a `preFinish` body, what an
 * application's error handler sends) are serialized exactly as without them, and HEAD and PATCH,
 * which answer without a body, pay nothing for them.
 */
import { Type, type Static, type TObject, type TOptional, type TSchema, type TString } from '@sinclair/typebox'
import type { FastifySchema, FastifySerializerCompiler } from 'fastify'

/** A route schema with the OpenAPI words @fastify/swagger reads (its own types add them when it is installed). */
export interface RouteSchema extends FastifySchema {
  headers: TObject<typeof request>
  summary: string
  description: string
  tags: string[]
  /** @fastify/swagger leaves the route out of the document. */
  hide?: boolean
}

/** Header names are lower case: Fastify matches them so, and the handlers read them so. */
const text = (description: string, options: Record<string, unknown> = {}): TOptional<TString> => Type.Optional(Type.String({ description, ...options }))

const INTEGER = '^(?:0|[1-9][0-9]{0,15})$'

/** Request headers, by name; each route lists the ones its method reads. */
const request = {
  'tus-resumable': text('tus: the protocol version, `1.0.0` (a missing or other value is a 412 with `Tus-Version`). Optional on HEAD and GET; ignored on OPTIONS and by draft requests.', { examples: ['1.0.0'] }),
  'upload-draft-interop-version': text('IETF draft: the interop version the client speaks (3 to 8); a request without it is a tus request.', { pattern: '^[3-8]$' }),
  'x-http-method-override': text('Another method for this request (`PATCH`, `DELETE` …), for clients that can only send GET and POST.'),
  'upload-length': text('The size of the whole upload in bytes (tus: required on creation unless deferred; on PATCH, sets a deferred length once). A structured integer for the draft (6+).', { pattern: INTEGER }),
  'upload-defer-length': text('tus `creation-defer-length`: `1` when the size is not known yet.', { pattern: '^1$' }),
  'upload-metadata': text('Comma-separated `key base64value` pairs (tus `creation`; also read on draft creations).'),
  'upload-concat': text('tus `concatenation`: `partial`, or `final;<url> <url> …` naming finished partial uploads.'),
  'upload-offset': text('The offset the body starts at; must equal the upload\'s offset (409 otherwise).', { pattern: INTEGER }),
  'upload-checksum': text('tus `checksum`: `<algorithm> <base64 digest>` of the body; a mismatch discards it (460).'),
  'upload-complete': text('IETF draft (4+): `?1` when this request carries the end of the upload, `?0` otherwise.', { enum: ['?0', '?1'] }),
  'upload-incomplete': text('IETF draft interop 3: `?1` when more requests follow, `?0` otherwise.', { enum: ['?0', '?1'] }),
  'content-type': text('`application/offset+octet-stream` for tus bytes (415 for another type with a body); `application/partial-upload` for draft appends (6+).'),
  'content-length': text('The body size; `0` or absent with no body.', { pattern: INTEGER }),
  'content-disposition': text('IETF draft creation: `filename` is kept as metadata.'),
  range: text('GET: one byte range (`bytes=0-99`); 416 when outside the upload.'),
  'if-none-match': text('GET: 304 when the ETag matches.'),
  'if-range': text('GET: the range applies only while the ETag is this one.')
} as const

type RequestHeader = keyof typeof request

/**
 * The headers the handlers may read, as the type provider gives them: every one optional, on every
 * route, as at run time (an `X-HTTP-Method-Override` lets a POST carry a PATCH's headers).
 */
export type TusRequestHeaders = Static<TObject<typeof request>>

/** The headers a method reads, for OpenAPI; typed as all of them (`TusRequestHeaders`). */
function headers (...names: RequestHeader[]): TObject<typeof request> {
  const properties: Record<string, TSchema> = {}
  for (const name of ['tus-resumable', 'upload-draft-interop-version', 'x-http-method-override', ...names] as RequestHeader[]) properties[name] = request[name]
  // every other header is allowed: a schema never refuses what tus accepts
  return Type.Object(properties, { additionalProperties: true }) as TObject<typeof request>
}

/** Response headers, by their usual spelling (OpenAPI shows them as written). */
const responseHeader = (description: string, options: Record<string, unknown> = {}): TSchema => Type.String({ description, ...options })
const answer = {
  'Tus-Resumable': responseHeader('`1.0.0` on every tus answer.'),
  'Upload-Draft-Interop-Version': responseHeader('IETF draft: the request\'s interop version, on every draft answer.'),
  'Tus-Version': responseHeader('The protocol versions the server speaks: `1.0.0`.'),
  'Tus-Extension': responseHeader('The tus extensions on: `creation,creation-with-upload,creation-defer-length,termination,checksum,checksum-trailer,concatenation,expiration` as the store allows.'),
  'Tus-Max-Size': responseHeader('The largest upload accepted, in bytes (when the server has a limit).', { pattern: INTEGER }),
  'Tus-Checksum-Algorithm': responseHeader('The checksum algorithms accepted in `Upload-Checksum`.'),
  'Upload-Limit': responseHeader('IETF draft (6+): limits as a structured dictionary (`min-size`, `max-size`, `max-age`/`expires`).'),
  'Accept-Patch': responseHeader('IETF draft (8): `application/partial-upload`.'),
  Location: responseHeader('The URL of the new upload.'),
  'Upload-Offset': responseHeader('How many bytes of the upload the server has.', { pattern: INTEGER }),
  'Upload-Length': responseHeader('The size of the upload, when known.', { pattern: INTEGER }),
  'Upload-Defer-Length': responseHeader('tus: `1` while the size is not known.'),
  'Upload-Metadata': responseHeader('The upload\'s metadata, as sent on creation.'),
  'Upload-Concat': responseHeader('tus: `partial`, or `final;` and the URLs of the parts.'),
  'Upload-Expires': responseHeader('When an unfinished upload expires (an HTTP date), with the `expiration` extension.'),
  'Upload-Complete': responseHeader('IETF draft: `?1` when the upload is complete.'),
  'Cache-Control': responseHeader('`no-store` on HEAD; `no-cache` on downloads.'),
  'Content-Range': responseHeader('GET: the range sent (206), or `bytes */<size>` (416).'),
  ETag: responseHeader('GET: the upload\'s validator.')
} as const

type ResponseHeader = keyof typeof answer

function pick (names: ResponseHeader[]): Record<string, TSchema> {
  const picked: Record<string, TSchema> = {}
  for (const name of names) picked[name] = answer[name]
  return picked
}

/** An answer without a body. */
function empty (description: string, ...names: ResponseHeader[]): Record<string, unknown> {
  return { description, type: 'null', headers: pick(['Tus-Resumable', 'Upload-Draft-Interop-Version', ...names]) }
}

/** An answer whose body the application shapes (a `preFinish` hook's); empty otherwise. */
function maybeBody (description: string, ...names: ResponseHeader[]): Record<string, unknown> {
  return { description, headers: pick(['Tus-Resumable', 'Upload-Draft-Interop-Version', ...names]), content: { '*/*': { schema: {} } } }
}

/** The bodies of refusals: tus's JSON, and problem+json (RFC 9457) for draft requests. */
const ErrorBody = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'A stable error code (docs/protocol.md), such as `ERR_INVALID_OFFSET`.' }),
  error: Type.String(),
  message: Type.String()
})
const Problem = Type.Object({
  type: Type.String({ description: 'The draft\'s problem type, or `about:blank`.' }),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.String(),
  code: Type.String({ description: 'The same stable error code as in tus answers.' })
})

function refusal (description: string, ...names: ResponseHeader[]): Record<string, unknown> {
  return {
    description,
    headers: pick(['Tus-Resumable', 'Upload-Draft-Interop-Version', ...names]),
    content: { 'application/json': { schema: ErrorBody }, 'application/problem+json': { schema: Problem } }
  }
}

const refusals = {
  400: refusal('A malformed header (`ERR_INVALID_OFFSET`, `ERR_INVALID_UPLOAD_LENGTH`, `ERR_INVALID_METADATA` …), a refusal by a hook, or a body that ended early.'),
  403: refusal('A hook refused the request, or it writes to a final (concatenated) upload (`ERR_MODIFY_FINAL`).'),
  404: refusal('No such upload (`ERR_UPLOAD_NOT_FOUND`).'),
  405: refusal('`X-HTTP-Method-Override` names a method this URL does not have (`ERR_INVALID_METHOD_OVERRIDE`).'),
  409: refusal('`Upload-Offset` is not the upload\'s offset (`ERR_MISMATCHED_OFFSET`), or the upload is not complete (GET).', 'Upload-Offset'),
  410: refusal('The upload expired (`ERR_UPLOAD_EXPIRED`), or (draft 8) is already complete.'),
  412: refusal('tus: `Tus-Resumable` is missing or not `1.0.0` (`ERR_UNSUPPORTED_VERSION`).', 'Tus-Version'),
  413: refusal('Larger than the server accepts (`ERR_MAX_SIZE_EXCEEDED`) or than the upload (`ERR_UPLOAD_SIZE_EXCEEDED`).'),
  415: refusal('A body that is not `application/offset+octet-stream` (`ERR_INVALID_CONTENT_TYPE`).'),
  416: refusal('The range is outside the upload (`ERR_RANGE_NOT_SATISFIABLE`).', 'Content-Range'),
  460: refusal('The body does not match `Upload-Checksum` and was discarded (`ERR_CHECKSUM_MISMATCH`).'),
  501: refusal('The store cannot defer the upload length (`ERR_NOT_IMPLEMENTED`).'),
  503: refusal('The lock service is unreachable, the lock was lost, or the server is shutting down; retry.')
} as const

type Refusal = keyof typeof refusals

function refused (...statuses: Refusal[]): Record<string, unknown> {
  const picked: Record<string, unknown> = {}
  for (const status of statuses) picked[status] = refusals[status]
  return picked
}

const params = Type.Object({
  id: Type.String({ description: 'The upload id, from the creation\'s `Location` (1 to 100 of `A-Z a-z 0-9 _ -`).', pattern: '^[A-Za-z0-9_-]{1,100}$' })
})

const tags = ['tus']

/** The schema of each method on the collection (`/`). */
export const collectionSchemas: Record<string, RouteSchema> = {
  OPTIONS: {
    summary: 'What the server speaks',
    description: 'tus discovery: versions, extensions, size limit and checksum algorithms. `Tus-Resumable` on the request is ignored.',
    tags,
    headers: headers(),
    response: { 204: empty('The server\'s capabilities.', 'Tus-Version', 'Tus-Extension', 'Tus-Max-Size', 'Tus-Checksum-Algorithm', 'Upload-Limit', 'Accept-Patch'), ...refused(405) }
  },
  POST: {
    summary: 'Create an upload',
    description: 'tus `creation`: a new upload of `Upload-Length` bytes (or a deferred length), optionally with its first bytes (`creation-with-upload`) or as a concatenation of partial uploads. Draft requests create by POST, PUT or PATCH here.',
    tags,
    headers: headers('upload-length', 'upload-defer-length', 'upload-metadata', 'upload-concat', 'upload-checksum', 'content-type', 'content-length', 'upload-complete', 'upload-incomplete', 'content-disposition'),
    response: {
      104: empty('IETF draft: the upload\'s URL before the body is read (and its offset while it streams).', 'Location', 'Upload-Offset', 'Upload-Limit'),
      201: maybeBody('Created; the body is empty unless a `preFinish` hook gives one for an upload completed by this request.', 'Location', 'Upload-Offset', 'Upload-Expires', 'Upload-Complete', 'Upload-Limit'),
      ...refused(400, 403, 404, 405, 412, 413, 415, 460, 501, 503)
    }
  }
}

const draftCreation: RouteSchema = {
  ...collectionSchemas.POST as RouteSchema,
  summary: 'Create an upload (IETF draft)',
  description: 'IETF draft: a creation by PUT or PATCH (with `Upload-Draft-Interop-Version`); tus requests get a 404 (PUT) or are appends without an id (PATCH).'
}
collectionSchemas.PUT = draftCreation
collectionSchemas.PATCH = draftCreation

/** The schema of each method on an upload (`/:id`). */
export const uploadSchemas: Record<string, RouteSchema> = {
  OPTIONS: { ...collectionSchemas.OPTIONS as RouteSchema, params },
  HEAD: {
    summary: 'Where an upload stands',
    description: 'Its offset, length, metadata and expiry; interrupts a stalled PATCH for it.',
    tags,
    params,
    headers: headers(),
    response: {
      200: empty('The upload\'s state (draft 3 and 4 answer 204).', 'Upload-Offset', 'Upload-Length', 'Upload-Defer-Length', 'Upload-Metadata', 'Upload-Concat', 'Upload-Expires', 'Upload-Complete', 'Upload-Limit', 'Cache-Control'),
      204: empty('IETF draft 3 and 4: the upload\'s state.', 'Upload-Offset', 'Upload-Complete', 'Cache-Control'),
      ...refused(400, 403, 404, 410, 412, 503)
    }
  },
  PATCH: {
    summary: 'Append to an upload',
    description: 'The body is stored at `Upload-Offset`; whatever arrives is kept, also when the connection drops. `Upload-Length` sets a deferred length once.',
    tags,
    params,
    headers: headers('upload-offset', 'upload-length', 'upload-checksum', 'content-type', 'content-length', 'upload-complete', 'upload-incomplete'),
    response: {
      104: empty('IETF draft (5+): the offset while the body streams in.', 'Upload-Offset'),
      200: maybeBody('The upload is complete and a `preFinish` hook gave a body.', 'Upload-Offset', 'Upload-Expires', 'Upload-Complete'),
      201: empty('IETF draft 3 to 6: appended, not complete yet.', 'Upload-Offset', 'Upload-Complete'),
      204: empty('Appended.', 'Upload-Offset', 'Upload-Expires', 'Upload-Complete'),
      ...refused(400, 403, 404, 405, 409, 410, 412, 413, 415, 460, 503)
    }
  },
  POST: {
    summary: 'Another method by override',
    description: 'With `X-HTTP-Method-Override` (`PATCH`, `DELETE`, `HEAD` …) this is that method; without it, a 405.',
    tags,
    params,
    headers: headers('upload-offset', 'upload-length', 'upload-checksum', 'content-type', 'content-length'),
    response: { ...refused(405) }
  },
  DELETE: {
    summary: 'Terminate an upload',
    description: 'tus `termination`: the upload and its bytes are removed; later requests get 404.',
    tags,
    params,
    headers: headers(),
    response: { 204: empty('Removed.'), ...refused(400, 403, 404, 405, 412, 503) }
  },
  GET: {
    summary: 'Download a finished upload',
    description: 'Its bytes with its content type, a safe disposition, ranges and validators. An unfinished upload is a 409.',
    tags,
    params,
    headers: headers('range', 'if-none-match', 'if-range'),
    response: {
      200: { description: 'The bytes of the upload.', headers: pick(['Tus-Resumable', 'ETag', 'Cache-Control']), content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
      206: { description: 'The requested range.', headers: pick(['Tus-Resumable', 'ETag', 'Content-Range']), content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
      304: empty('Not modified (`If-None-Match`).', 'ETag'),
      ...refused(403, 404, 405, 409, 410, 412, 416)
    }
  }
}

/**
 * The serializer compiler of the tus routes: none. Fastify then serializes every answer as it
 * would without a response schema (the default error body, `JSON.stringify`, or what an
 * application's serializer does), so the schemas stay documentation.
 */
export const describeOnly = (() => false) as unknown as FastifySerializerCompiler<FastifySchema>
