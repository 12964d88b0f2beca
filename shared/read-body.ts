import type { IncomingMessage } from 'node:http'
import { KeepError } from './errors.js'

/** Reads a request body into memory up to `limit` bytes; beyond it → KEEP_TOO_LARGE (413). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) throw new KeepError('KEEP_TOO_LARGE', `body exceeds ${limit} bytes`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) throw new KeepError('KEEP_TOO_LARGE', `body exceeds ${limit} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}
