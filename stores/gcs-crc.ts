/**
 * CRC32C (Castagnoli) arithmetic for checking compositions: GCS reports the CRC32C of every
 * object, and the CRC32C of a concatenation follows from the CRC32Cs and lengths of its parts,
 * so the store can tell whether a composed object holds exactly its sources, without reading
 * a byte of them.
 *
 * Combining uses the standard trick of applying "append n zero bytes" as a 32×32 matrix over
 * GF(2), squared repeatedly, so it costs O(log n) for n bytes.
 */

/** The reflected Castagnoli polynomial. */
const POLYNOMIAL = 0x82f63b78

/** A CRC32C as GCS writes it (base64 of the big-endian value) → the unsigned value. */
export function parseCrc32c (value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const bytes = Buffer.from(value, 'base64')
  return bytes.length === 4 ? bytes.readUInt32BE(0) : undefined
}

export function formatCrc32c (value: number): string {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value >>> 0)
  return bytes.toString('base64')
}

/** The CRC32C of `a` followed by `b`, from the CRC32C of `a`, the CRC32C of `b` and `b`'s length. */
export function combineCrc32c (first: number, second: number, secondLength: number): number {
  if (secondLength <= 0) return first >>> 0
  // odd: the operator for one zero bit; even, odd: then squared to 2, 4, 8 … zero bits
  let odd = new Uint32Array(32)
  let even = new Uint32Array(32)
  odd[0] = POLYNOMIAL
  for (let n = 1, row = 1; n < 32; n++, row <<= 1) odd[n] = row >>> 0
  square(even, odd) // two zero bits
  square(odd, even) // four zero bits
  let crc = first >>> 0
  let length = secondLength
  // each round squares the operator (one zero byte, two, four …) and applies it for the length's low bit
  do {
    square(even, odd)
    if (length % 2 === 1) crc = times(even, crc)
    length = Math.floor(length / 2)
    const swap = odd
    odd = even
    even = swap
  } while (length > 0)
  return (crc ^ second) >>> 0
}

/** The CRC32C of the concatenation of parts given by their CRC32Cs and sizes. */
export function concatCrc32c (parts: ReadonlyArray<{ crc32c: number, size: number }>): number {
  let crc = 0
  for (const part of parts) crc = combineCrc32c(crc, part.crc32c, part.size)
  return crc
}

function times (matrix: Uint32Array, vector: number): number {
  let sum = 0
  for (let i = 0, v = vector >>> 0; v !== 0; i++, v >>>= 1) {
    if ((v & 1) === 1) sum ^= matrix[i] as number
  }
  return sum >>> 0
}

function square (target: Uint32Array, matrix: Uint32Array): void {
  for (let n = 0; n < 32; n++) target[n] = times(matrix, matrix[n] as number)
}
