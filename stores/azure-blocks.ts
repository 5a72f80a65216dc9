/**
 * Blocks of the Azure store: their ids, their sizes, and cutting a body into them.
 *
 * A block id names the offset its block starts at and a random tag (every id of a blob must have
 * the same length: 16 digits, a dot, 8 hex digits, in base64). Block sizes grow with the number
 * of blocks the upload has: `blockSize` for the first 5,000, then doubling every 5,000 up to
 * `maxBlockSize`, so a blob's 50,000 blocks hold terabytes while memory holds one block per write.
 */
import { randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'

/** Azure's limit of committed blocks per block blob. */
export const MAX_BLOCKS = 50_000
const GROWTH_EVERY = 5000
const DIGITS = 16

export function blockId (start: number): string {
  if (!Number.isSafeInteger(start) || start < 0 || start >= 10 ** DIGITS) throw new RangeError(`AzureStore: offset ${start} out of range`)
  return Buffer.from(`${String(start).padStart(DIGITS, '0')}.${randomBytes(4).toString('hex')}`).toString('base64')
}

/** The size of the block that would be the blob's `index`-th (0-based). */
export function blockSizeAt (index: number, blockSize: number, maxBlockSize: number): number {
  return Math.min(maxBlockSize, blockSize * 2 ** Math.floor(index / GROWTH_EVERY))
}

/**
 * Reads `body` and hands it on in blocks: `stage(block)` for each full block (its size asked of
 * `sizeOf` when the block starts) and for the rest at the end. A body that fails ends the blocks
 * there: what arrived is staged, and the error is returned, not thrown.
 */
export async function cutIntoBlocks (
  body: Readable,
  sizeOf: () => number,
  stage: (block: Buffer) => Promise<void>,
  signal?: AbortSignal
): Promise<{ failure: unknown }> {
  let size = sizeOf()
  let parts: Buffer[] = []
  let held = 0
  let failure: unknown
  try {
    for await (const chunk of body) {
      if (signal?.aborted === true) throw signal.reason
      let data = chunk as Buffer
      while (data.length > 0) {
        const take = Math.min(data.length, size - held)
        parts.push(data.subarray(0, take))
        held += take
        data = data.subarray(take)
        if (held === size) {
          const block = Buffer.concat(parts, held)
          parts = []
          held = 0
          await stage(block)
          size = sizeOf()
        }
      }
    }
  } catch (err) {
    if (signal?.aborted === true) throw err
    failure = err
  }
  if (held > 0) await stage(Buffer.concat(parts, held))
  return { failure }
}
