import net from 'node:net'
import { KeepError } from '../shared/errors.js'

/**
 * Where a body's bytes land. The reader asks for room before every socket
 * read and reads straight into it (no chunk is allocated or copied on the
 * way), so the room must be free memory when asked for.
 */
export interface BodyTarget {
  /** Free memory for the next body bytes: at least 1 byte, at most `left`. */
  room(left: number): Buffer
  /** `n` bytes landed at the start of the last room; a promise holds further reads back until it settles. */
  filled(n: number): void | Promise<void>
}

/** How a GET ended once the server answered: a 200 whose body was delivered, cut short, or another status. */
export interface RawAnswer {
  status: number
  /** A 200 whose body did not arrive whole (or that the reader refused); else `undefined`. */
  problem?: string
  /** Another status: the first line of its body. */
  reason?: string
  /** A 200 without a Content-Length (chunked): nothing was read of its body; ask a full HTTP client. */
  unframed?: true
}

export interface RawGetOptions {
  signal?: AbortSignal | undefined
  connectTimeoutMs: number
  /** No byte for this long (waiting for the answer or inside the body) ends the request. */
  idleTimeoutMs: number
}

/** A response head longer than this is refused (a keepstore's is ~300 bytes). */
const HEAD_MAX = 16 * 1024
/** Bytes of an error body kept for its reason. */
const REASON_MAX = 1024

/** An error the client describes like undici's (client/context.ts NET_ERRORS): `code` says what happened. */
function netError(server: string, code: string, cause?: unknown): KeepError {
  return new KeepError('KEEP_UNAVAILABLE', `${server}: ${code}`, { cause: cause ?? Object.assign(new Error(code), { code }) })
}

/**
 * One `GET path` over a plain-HTTP connection of its own (`Connection:
 * close`), reading a 200 body of exactly `length` bytes into `target`
 * through net's `onread`: the bytes go from the kernel into the caller's
 * memory, and nothing else touches them. For block bodies, where undici's
 * per-chunk work (a fresh 64 KiB buffer per read, its copy into the wasm
 * parser, a stream) cost more CPU than the MD5 check itself. A 200 carries
 * `Content-Length` (PROTOCOL §3: GET answers the exact bytes with their
 * length): another length, or a body that stops short, is a `problem`; a
 * 200 without one (chunked, not from a keepstore) comes back `unframed`.
 * @throws KeepError KEEP_UNAVAILABLE when no answer arrived (refused, reset,
 * timed out); the abort reason when `signal` fires.
 */
export function rawGet(server: string, path: string, headers: Record<string, string>, length: number, target: BodyTarget, options: RawGetOptions): Promise<RawAnswer> {
  const url = new URL(server)
  const { signal } = options
  if (signal?.aborted) return Promise.reject(signal.reason)
  // The request is written as text: a line break in the path or a header (a token from the environment) would start another header.
  if (/[\r\n]/.test(path + Object.entries(headers).join())) return Promise.reject(new KeepError('KEEP_BAD_REQUEST', 'a line break in the request path or a header (check KEEP_TOKEN)'))
  return new Promise<RawAnswer>((resolve, reject) => {
    // The head, an error body's first bytes, and body bytes that must be copied (those that came with the
    // head or arrived while the target was busy: the room is taken before every read, so a busy target gets this).
    const head = Buffer.allocUnsafe(HEAD_MAX)
    let headUsed = 0
    let phase: 'head' | 'body' | 'reason' | 'done' = 'head'
    let status = 0
    let received = 0
    let reasonLength = 0
    let reasonWanted = 0
    let room: Buffer = head
    let waiting: Promise<void> | undefined

    const finish = (outcome: RawAnswer | Error): void => {
      if (phase === 'done') return
      phase = 'done'
      clearTimeout(connectTimer)
      signal?.removeEventListener('abort', onAbort)
      socket.destroy()
      // A body's last bytes may still be with the target (a write in flight): settle after them.
      void Promise.resolve(waiting).then(
        () => (outcome instanceof Error ? reject(outcome) : resolve(outcome)),
        (err: unknown) => reject(err),
      )
    }
    let reasonChunked = false
    // A chunked error body starts with its first chunk's size line.
    const reasonDone = (): void => finish({ status, reason: firstLine(head.subarray(0, reasonLength), reasonChunked) })
    const cut = (why: string): void => {
      if (phase === 'body') finish({ status, problem: `cut short after ${received} of ${length} bytes (${why})` })
      else if (phase === 'reason') reasonDone()
      else finish(netError(server, why))
    }
    /** After `n` more body bytes reached the target: done, go on reading, or pause until the target is ready. */
    const after = (pending: void | Promise<void>): boolean => {
      if (pending instanceof Promise) waiting = pending
      if (received === length) {
        finish({ status })
        return false
      }
      if (!(pending instanceof Promise)) return true
      pending.then(
        () => {
          waiting = undefined
          if (phase !== 'done') socket.resume()
        },
        (err: unknown) => finish(err as Error),
      )
      return false
    }
    /** Copies body bytes into the target's rooms; a promise once the target makes us wait. */
    const deliver = (bytes: Buffer): void | Promise<void> => {
      for (let at = 0; at < bytes.length; ) {
        const into = target.room(length - received)
        const n = bytes.copy(into, 0, at, at + Math.min(into.length, length - received))
        at += n
        received += n
        const pending = target.filled(n)
        if (pending instanceof Promise && at < bytes.length) return pending.then(() => deliver(bytes.subarray(at)))
        if (pending instanceof Promise) return pending
      }
    }
    const onHead = (end: number): boolean => {
      const parsed = parseHead(head.subarray(0, end).toString('latin1'))
      if (parsed === undefined) {
        finish(netError(server, 'not an HTTP/1.x answer'))
        return false
      }
      status = parsed.status
      const rest = head.subarray(end + 4, headUsed)
      if (status !== 200) {
        phase = 'reason'
        reasonWanted = Math.min(REASON_MAX, parsed.length ?? REASON_MAX)
        reasonChunked = parsed.chunked
        reasonLength = rest.copy(head, 0, 0, reasonWanted)
        if (reasonLength >= reasonWanted) reasonDone()
        return true
      }
      if (parsed.length === undefined) {
        finish({ status, unframed: true })
        return false
      }
      if (parsed.length !== length) {
        finish({ status, problem: `answered with Content-Length ${parsed.length}, not the ${length} bytes of the size hint` })
        return false
      }
      phase = 'body'
      // More bytes than the length cannot be: the request was the connection's only one.
      return after(deliver(rest.subarray(0, length)))
    }

    const socket = net.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      onread: {
        buffer: () => {
          if (phase === 'body' && received < length && waiting === undefined) room = target.room(length - received)
          else if (phase === 'reason') room = head.subarray(reasonLength, Math.max(reasonLength + 1, reasonWanted))
          else if (phase === 'head') room = head.subarray(Math.min(headUsed, HEAD_MAX - 1))
          else room = head
          return room
        },
        callback: (n: number): boolean => {
          if (phase === 'head') {
            headUsed += n
            const end = head.subarray(0, headUsed).indexOf('\r\n\r\n')
            if (end >= 0) return onHead(end)
            if (headUsed >= HEAD_MAX - 1) finish(netError(server, 'answer head too large'))
            return true
          }
          if (phase === 'reason') {
            reasonLength += n
            if (reasonLength >= reasonWanted) reasonDone()
            return true
          }
          if (phase !== 'body') return false
          if (room === head) return after(deliver(head.subarray(0, Math.min(n, length - received))))
          received += n
          return after(target.filled(n))
        },
      },
    })
    const connectTimer = setTimeout(() => cut('UND_ERR_CONNECT_TIMEOUT'), options.connectTimeoutMs)
    const onAbort = (): void => finish(signal!.reason as Error)
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.setNoDelay(true)
    socket.setTimeout(options.idleTimeoutMs, () => cut(phase === 'head' ? 'UND_ERR_HEADERS_TIMEOUT' : 'UND_ERR_BODY_TIMEOUT'))
    socket.once('connect', () => {
      clearTimeout(connectTimer)
      const lines = [`GET ${path} HTTP/1.1`, `Host: ${url.host}`, 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
      socket.write(`${lines.join('\r\n')}\r\n\r\n`)
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (phase === 'head' && headUsed === 0) finish(netError(server, err.code ?? err.message, err))
      else cut(err.code === 'ECONNRESET' ? 'connection reset' : (err.code ?? err.message))
    })
    socket.once('close', () => cut(phase === 'body' ? 'connection closed' : 'UND_ERR_SOCKET'))
  })
}

/** Status and Content-Length of an HTTP/1.x response head (without its final blank line). */
function parseHead(text: string): { status: number; length: number | undefined; chunked: boolean } | undefined {
  const lines = text.split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '')
  if (!m) return undefined
  let length: number | undefined
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    // A chunked body has no length we could check against the size hint.
    if (name === 'transfer-encoding') return { status: Number(m[1]), length: undefined, chunked: /chunked/i.test(value) }
    if (name === 'content-length') {
      if (!/^\d+$/.test(value) || (length !== undefined && length !== Number(value))) return { status: Number(m[1]), length: undefined, chunked: false }
      length = Number(value)
    }
  }
  return { status: Number(m[1]), length, chunked: false }
}

function firstLine(body: Buffer, chunked = false): string {
  const lines = body.toString('utf8').split('\n')
  return (lines[chunked ? 1 : 0] ?? '').slice(0, 200).trim()
}
