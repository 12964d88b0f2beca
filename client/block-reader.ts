import { createHash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import type { Readable } from 'node:stream'

/** Keep's block size: files are cut into blocks of 64 MiB, the last one shorter. */
export const BLOCK_SIZE = 64 * 1024 * 1024
/**
 * Bytes read (and hashed) at a time. Hashing a whole 64 MiB block in one call
 * would hold the event loop for ~80 ms while other blocks are uploading.
 */
const READ_CHUNK = 1024 * 1024

/** Where bytes come from: a file (or FIFO) by handle, or a stream such as stdin. */
export interface ByteSource {
  /** Reads up to `length` bytes into `buffer` at `offset`; 0 at the end. */
  read(buffer: Buffer, offset: number, length: number): Promise<number>
}

export function fileSource(handle: FileHandle): ByteSource {
  return {
    async read(buffer, offset, length) {
      return (await handle.read(buffer, offset, length, null)).bytesRead
    },
  }
}

/** A stream's chunks copied into the caller's buffers (stdin cannot be read in place). */
export function streamSource(stream: Readable): ByteSource {
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  let pending: Buffer | undefined
  let ended = false
  return {
    async read(buffer, offset, length) {
      while (!pending?.length) {
        if (ended) return 0
        const next = await chunks.next()
        if (next.done) {
          ended = true
          return 0
        }
        pending = typeof next.value === 'string' ? Buffer.from(next.value) : next.value
      }
      const n = pending.copy(buffer, offset, 0, Math.min(length, pending.length))
      pending = pending.subarray(n)
      return n
    },
  }
}

/**
 * At most `count` buffers out at once, each reused once given back: memory
 * stays at `count` blocks however large the input. A buffer is allocated at
 * the size first asked for (a small file or block never costs 64 MiB of
 * external memory, which V8 would answer with a garbage collection).
 */
export class BufferPool {
  private readonly free: Buffer[] = []
  private readonly waiting: Array<() => void> = []
  private out = 0

  constructor(private readonly count: number) {}

  /** A buffer of at least `size` bytes; waits while `count` are out. */
  async take(size: number = BLOCK_SIZE): Promise<Buffer> {
    while (this.out >= this.count) await new Promise<void>((resolve) => this.waiting.push(resolve))
    this.out++
    const i = this.free.findIndex((b) => b.length >= size)
    if (i >= 0) return this.free.splice(i, 1)[0]!
    this.free.pop() // too small for this one: let it go
    return Buffer.allocUnsafeSlow(size)
  }

  give(buffer: Buffer): void {
    this.out--
    this.free.push(buffer)
    this.waiting.shift()?.()
  }
}

/** One block read from a source: its bytes live in a pool buffer until `release()`. */
export interface Block {
  /** 0-based position in its file. */
  index: number
  hash: string
  size: number
  /** Exactly the block's bytes (a view of the pool buffer). */
  data: Buffer
  release(): void
}

/**
 * Cuts a source into blocks of `BLOCK_SIZE` (the last one shorter; none for
 * an empty source), hashing as it reads. Each block waits for a free pool
 * buffer, so a slow upload holds the reader back instead of growing memory.
 * `sizeHint` (a regular file's size) sizes the buffers; the data decides
 * where blocks end all the same (a file that grew is read to its end).
 */
export async function* readBlocks(source: ByteSource, pool: BufferPool, sizeHint?: number): AsyncGenerator<Block> {
  for (let index = 0; ; index++) {
    // A file's size is known: its last block gets a buffer of its own size (never 0: the end is found by reading).
    const left = sizeHint === undefined ? BLOCK_SIZE : Math.max(1, Math.min(BLOCK_SIZE, sizeHint - index * BLOCK_SIZE))
    const buffer = await pool.take(left)
    const md5 = createHash('md5')
    let size = 0
    let n = 0
    do {
      n = await source.read(buffer, size, Math.min(READ_CHUNK, buffer.length - size))
      if (n > 0) {
        md5.update(buffer.subarray(size, size + n))
        size += n
      }
    } while (n > 0 && size < buffer.length)
    if (size === 0) {
      pool.give(buffer)
      return
    }
    let released = false
    const release = (): void => {
      if (!released) pool.give(buffer)
      released = true
    }
    yield { index, hash: md5.digest('hex'), size, data: buffer.subarray(0, size), release }
    if (size < buffer.length) return
  }
}
