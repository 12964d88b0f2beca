/** Bytes gathered before one writev: fewer thread-pool round trips than a write per socket chunk. */
const WRITE_BATCH_BYTES = 1024 * 1024

/**
 * Gathers body chunks and writes them in batches, one batch in flight while
 * the next is read from the socket (so reading and writing overlap, as a
 * piped stream would). Memory per write: at most two batches.
 */
export class BatchedWriter {
  private pending: Buffer[] = []
  private pendingBytes = 0
  private inflight: Promise<void> | undefined

  constructor(private readonly write: (chunks: Buffer[]) => Promise<void>) {}

  async push(chunk: Buffer): Promise<void> {
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    if (this.pendingBytes < WRITE_BATCH_BYTES) return
    if (this.inflight) await this.inflight
    this.inflight = this.write(this.take())
    this.inflight.catch(() => undefined) // rejections surface at the next await
  }

  async end(): Promise<void> {
    if (this.inflight) await this.inflight
    this.inflight = undefined
    if (this.pending.length) await this.write(this.take())
  }

  /** Waits for a write still in flight after a failure, so the file is not closed under it. */
  async settled(): Promise<void> {
    await this.inflight?.catch(() => undefined)
  }

  private take(): Buffer[] {
    const chunks = this.pending
    this.pending = []
    this.pendingBytes = 0
    return chunks
  }
}
