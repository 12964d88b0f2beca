import { READ_CHUNK_SIZE } from './hashing-stream.js'

/**
 * Reusable buffers for block reads. A 64 MiB GET reads 64 chunks of 1 MiB;
 * fresh buffers of that size are external memory, and V8 answers a fast
 * stream of them with full garbage collections. A buffer taken here goes
 * back with {@link give} once nothing uses it any more (a GET: once the
 * socket has written it; it is then reused for another read). A buffer
 * never given back is simply collected.
 */
export class BufferPool {
  private readonly free: Buffer[] = []
  /** Buffers out on loan: only these may come back, each once. */
  private readonly lent = new WeakSet<ArrayBufferLike>()

  constructor(
    readonly size: number,
    private readonly maxFree: number,
  ) {}

  take(): Buffer {
    const buf = this.free.pop() ?? Buffer.allocUnsafeSlow(this.size)
    this.lent.add(buf.buffer)
    return buf
  }

  /**
   * Gives back a buffer from {@link take} (or a view of one): the caller
   * promises that nothing reads or writes it any more. Anything else, or a
   * second give of the same buffer, is ignored, so any chunk may be offered.
   */
  give(chunk: Uint8Array): void {
    const backing = chunk.buffer
    if (!this.lent.delete(backing)) return
    if (this.free.length < this.maxFree) this.free.push(Buffer.from(backing, 0, this.size))
  }
}

/** Reads smaller than this come from Node's shared slab (a 4 KiB block needs no 1 MiB buffer). */
export const POOLED_READ_MIN = 64 * 1024

/**
 * The read chunks of every volume of this process: at most 64 MiB kept idle.
 * One byte over a chunk: the last read of a block asks for a byte more than it expects.
 */
export const readBuffers = new BufferPool(READ_CHUNK_SIZE + 1, 64)
