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
  return {
    async *[Symbol.asyncIterator]() {
      let waiting = false
      const timer = setTimeout(() => {
        if (!waiting) return
        const err = new KeepError('KEEP_TIMEOUT', `request body idle for ${ms} ms`)
        req.destroy(err)
        req.socket?.destroy()
      }, ms)
      const chunks = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
      try {
        for (;;) {
          waiting = true
          timer.refresh()
          const next = await chunks.next()
          waiting = false
          if (next.done) return
          yield next.value
        }
      } finally {
        clearTimeout(timer)
        if (!req.complete) await chunks.return?.()
      }
    },
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
