import type { Readable } from 'node:stream'

/**
 * Resolves with the stream's first chunk (undefined for an empty stream) or
 * rejects with its first error, leaving the rest of the stream unread. A GET
 * waits for this before sending headers, so a block whose only chunk fails
 * verification becomes a 502 instead of a short body.
 */
export function firstChunk(stream: Readable): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      stream.off('readable', onReadable)
      stream.off('end', onEnd)
      stream.off('error', onError)
    }
    const onReadable = (): void => {
      const chunk = stream.read() as Buffer | null
      if (chunk === null) return
      cleanup()
      resolve(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resolve(undefined)
    }
    const onError = (err: Error): void => {
      cleanup()
      reject(err)
    }
    stream.on('readable', onReadable)
    stream.on('end', onEnd)
    stream.on('error', onError)
  })
}

/** An 'error' listener for a stream whose failures matter to nobody any more. */
export const ignore = (): void => undefined

/**
 * Closes a stream that will not be read to its end, without an unhandled
 * 'error' event: destroying an unread undici body emits RequestAbortedError,
 * and an 'error' nobody listens to kills the process. Whatever the stream
 * fails with from here on matters to nobody.
 */
export function abandon(stream: Readable): void {
  stream.on('error', ignore)
  stream.destroy()
}
