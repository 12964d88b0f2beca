import { createHash, randomBytes, type Hash } from 'node:crypto'
import { Readable } from 'node:stream'

/** One block to send: its hash and its bytes as one or two buffers. */
export interface Block {
  hash: string
  size: number
  /** The bytes, in order; two parts share a common prefix buffer (no copy of 64 MiB per block). */
  parts: readonly Buffer[]
}

/** An endless supply of distinct blocks of one size. */
export interface BlockSource {
  readonly size: number
  next(): Block
}

const TRAILER = 16

/**
 * Distinct blocks of `size` bytes without holding them all: every block is one
 * shared random prefix plus a 16-byte trailer (a run-unique random half and a
 * counter). MD5 is computed once over the prefix; each block's hash is a copy
 * of that state updated with its trailer, so a 64 MiB block costs the load
 * generator microseconds, not 80 ms of CPU that the servers would then lack.
 */
export function createBlockSource(size: number): BlockSource {
  if (size < TRAILER) throw new RangeError(`block size must be ≥ ${TRAILER}`)
  const prefix = randomBytes(size - TRAILER)
  const prefixHash: Hash = createHash('md5').update(prefix)
  const salt = randomBytes(8)
  let counter = 0n
  const small = size <= 1024 * 1024
  return {
    size,
    next(): Block {
      const trailer = Buffer.allocUnsafe(TRAILER)
      salt.copy(trailer, 0)
      trailer.writeBigUInt64BE(counter++, 8)
      const hash = prefixHash.copy().update(trailer).digest('hex')
      // Small blocks go out as one buffer: one write per request, as a real client does.
      const parts = small ? [Buffer.concat([prefix, trailer])] : [prefix, trailer]
      return { hash, size, parts }
    },
  }
}

/** The body of a block as undici takes it: the one buffer, or a stream of the parts. */
export function bodyOf(block: Block): Buffer | Readable {
  if (block.parts.length === 1) return block.parts[0]!
  return Readable.from(block.parts, { objectMode: false })
}

export const KiB = 1024
export const MiB = 1024 * 1024
export const GiB = 1024 * MiB
