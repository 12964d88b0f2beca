import type { IncomingMessage } from 'node:http'
import { KeepError } from './errors.js'

export interface BodyOptions {
  /** A body that sends nothing this long is cut: the request fails and its socket is closed. */
  idleTimeoutMs?: number | undefined
}

/**
 * The request body as an async iterable that fails with `KEEP_TIMEOUT` when
 * no byte arrives for `idleTimeoutMs` while the reader waits for one (time the
 * reader spends with a chunk, writing it to disk, does not count). The request
 * and its socket are destroyed then, so the reader's source errors (a volume
 * removes its temp file) and a slow-body client holds nothing.
 */
export function guardIdle(req: IncomingMessage, options: BodyOptions = {}): AsyncIterable<Buffer> {
  const ms = options.idleTimeoutMs
  if (ms === undefined || ms <= 0) return req as AsyncIterable<Buffer>
  return { [Symbol.asyncIterator]: () => new IdleGuard(req, ms) }
}

/**
 * {@link guardIdle}'s iterator: a plain object rather than an async
 * generator, which would cost a generator and extra promise turns per chunk
 * on every PUT. One timer per body, re-armed while the reader waits.
 */
class IdleGuard implements AsyncIterator<Buffer> {
  private waiting = false
  private done = false
  private readonly timer: NodeJS.Timeout
  private readonly chunks: AsyncIterator<Buffer>

  constructor(
    private readonly req: IncomingMessage,
    private readonly ms: number,
  ) {
    this.chunks = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
    this.timer = setTimeout(() => this.onIdle(), ms)
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (this.done) return Promise.resolve({ done: true, value: undefined })
    this.waiting = true
    this.timer.refresh()
    return this.chunks.next().then(
      (step) => {
        this.waiting = false
        if (step.done) this.finish()
        return step
      },
      (err: unknown) => {
        this.waiting = false
        this.finish()
        throw err
      },
    )
  }

  /** The reader stops early (a failed PUT): the rest of the body is not read. */
  async return(): Promise<IteratorResult<Buffer>> {
    const wasDone = this.done
    this.finish()
    if (!wasDone && !this.req.complete) await this.chunks.return?.()
    return { done: true, value: undefined }
  }

  private finish(): void {
    this.done = true
    clearTimeout(this.timer)
  }

  private onIdle(): void {
    if (!this.waiting) return
    const err = new KeepError('KEEP_TIMEOUT', `request body idle for ${this.ms} ms`)
    this.req.destroy(err)
    this.req.socket?.destroy()
  }
}

/**
 * Reads a request body into memory up to `limit` bytes; beyond it → KEEP_TOO_LARGE (413).
 * With a Content-Length the bytes go straight into one buffer of that size, so
 * a large body is never held twice (as chunks and as their concatenation).
 */
export async function readBody(req: IncomingMessage, limit: number, options: BodyOptions = {}): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) throw new KeepError('KEEP_TOO_LARGE', `body exceeds ${limit} bytes`)
  let whole = Number.isSafeInteger(declared) && declared > 0 ? Buffer.allocUnsafe(declared) : undefined
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of guardIdle(req, options)) {
    if (size + chunk.length > limit) throw new KeepError('KEEP_TOO_LARGE', `body exceeds ${limit} bytes`)
    if (whole !== undefined && size + chunk.length <= whole.length) chunk.copy(whole, size)
    else {
      // More than declared (never from Node's HTTP parser): fall back to chunks.
      if (whole !== undefined) chunks.push(whole.subarray(0, size))
      whole = undefined
      chunks.push(chunk)
    }
    size += chunk.length
  }
  if (whole !== undefined) return size === whole.length ? whole : whole.subarray(0, size)
  return Buffer.concat(chunks, size)
}
