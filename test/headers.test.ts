import t from 'tap'
import { mediaType, metadataBytes, parseInteger, parseMetadata, serializeMetadata } from '../plugin/headers.js'

t.test('integers are strict', async (t) => {
  t.equal(parseInteger('0'), 0)
  t.equal(parseInteger('1234'), 1234)
  t.equal(parseInteger('9007199254740991'), 9007199254740991)
  for (const bad of [undefined, '', ' 1', '1 ', '+1', '-1', '-0', '01', '1.5', '1e3', '0x10', 'abc', '9007199254740993', '99999999999999999999']) {
    t.equal(parseInteger(bad), undefined, `rejects ${JSON.stringify(bad)}`)
  }
})

t.test('media types ignore case and parameters', async (t) => {
  t.equal(mediaType('Application/Offset+Octet-Stream; charset=x'), 'application/offset+octet-stream')
  t.equal(mediaType(' text/plain '), 'text/plain')
  t.equal(mediaType(undefined), undefined)
})

t.test('Upload-Metadata parses strictly', async (t) => {
  t.same(parseMetadata(undefined), {})
  t.same(parseMetadata('  '), {})
  t.same(parseMetadata('filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential'),
    { filename: 'world_domination_plan.pdf', is_confidential: '' })
  t.same(parseMetadata('a YQ==, b  '), { a: 'a', b: '' }, 'spaces around pairs are fine')
  t.same(parseMetadata('name YsOkcg=='), { name: 'bär' }, 'UTF-8 values')
  t.same(Object.keys(parseMetadata('__proto__ YQ==')), ['__proto__'], '__proto__ is just a key')
  const bad: Array<[string, RegExp]> = [
    ['a YQ==,a YQ==', /twice/],
    ['a YQ== YQ==', /more than one space/],
    ['a YQ==,,b', /key/],
    [',a YQ==', /key/],
    ['a YQ', /not base64/],
    ['a Y*==', /not base64/],
    ['a _-8=', /not base64/],
    ['ä YQ==', /key/]
  ]
  for (const [value, message] of bad) {
    t.throws(() => parseMetadata(value), { code: 'ERR_INVALID_METADATA', statusCode: 400, message }, `rejects ${JSON.stringify(value)}`)
  }
})

t.test('Upload-Metadata values may be any bytes: lenient text, exact bytes on the side', async (t) => {
  const binary = Object.create(null) as Record<string, string>
  const parsed = parseMetadata('raw /wDD,text YsOkcg==', binary)
  t.same(parsed, { raw: '\ufffd\u0000\ufffd', text: 'bär' }, 'invalid sequences become U+FFFD in the text')
  t.same(binary, { raw: '/wDD' }, 'only values that are not UTF-8, as received')
  t.same(parseMetadata('raw /w=='), { raw: '\ufffd' }, 'no side map: the text only, never a 400')
  t.equal(serializeMetadata(parsed, binary), 'raw /wDD,text YsOkcg==', 'serialised with the exact bytes')
  const upload = { metadata: parsed, binaryMetadata: binary }
  t.same(metadataBytes(upload, 'raw'), Buffer.from([0xff, 0x00, 0xc3]))
  t.same(metadataBytes(upload, 'text'), Buffer.from('bär'))
  t.equal(metadataBytes(upload, 'missing'), undefined)
})

t.test('metadata serialises back to the wire form', async (t) => {
  t.equal(serializeMetadata({ filename: 'a.txt', empty: '' }), 'filename YS50eHQ=,empty')
  t.same(parseMetadata(serializeMetadata({ x: 'bär ✓', y: '' })), { x: 'bär ✓', y: '' })
  t.equal(serializeMetadata({}), '')
})
