import type { Socket } from 'node:net'
import { KeepError, isKeepError } from '../../shared/errors.js'
import { tokenFromAuthorization } from '../../shared/auth.js'
import type { AppDeps } from './context.js'
import { CORS_HEADERS, logAccess, requestIdOf } from './middleware.js'
import { touchBlock } from './block-handlers.js'

const MAX_HEAD_BYTES = 16 * 1024
const HEAD_TIMEOUT_MS = 10_000
const handled = new WeakSet<Socket>()

/**
 * Node's HTTP parser rejects methods it does not know (HPE_INVALID_METHOD)
 * before any handler runs, but Keep clients send `TOUCH /<locator>`. The
 * server's `clientError` event hands us the socket: read the request head
 * (the first chunk may be partial; capped and timed), answer, and close.
 * Node keeps reporting parse errors for the rest of that socket's bytes; we
 * ignore those once the socket is ours.
 */
export function handleClientError(deps: AppDeps, err: Error & { code?: string; rawPacket?: Buffer }, socket: Socket): void {
  if (handled.has(socket)) return
  const raw = err.rawPacket ?? Buffer.alloc(0)
  if (err.code !== 'HPE_INVALID_METHOD' || !raw.subarray(0, 6).equals(Buffer.from('TOUCH '))) {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') respond(socket, 408, 'request timeout', undefined)
    else if (err.code === 'HPE_HEADER_OVERFLOW') respond(socket, 431, 'request head too large', undefined)
    else respond(socket, 400, 'Bad Request', undefined)
    return
  }
  handled.add(socket)
  let head = raw
  const timer = setTimeout(() => socket.destroy(), HEAD_TIMEOUT_MS)
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk])
    check()
  }
  const check = (): void => {
    const end = head.indexOf('\r\n\r\n')
    if (end < 0) {
      if (head.length > MAX_HEAD_BYTES) finish(socket, 431, 'request head too large', undefined)
      return
    }
    socket.off('data', onData)
    clearTimeout(timer)
    void answer(deps, head.subarray(0, end).toString('latin1'), socket)
  }
  const finish = (s: Socket, status: number, message: string, requestId: string | undefined): void => {
    socket.off('data', onData)
    clearTimeout(timer)
    respond(s, status, message, requestId)
  }
  socket.on('data', onData)
  check()
}

async function answer(deps: AppDeps, head: string, socket: Socket): Promise<void> {
  const [requestLine = '', ...headerLines] = head.split('\r\n')
  const headers = new Map<string, string>()
  for (const line of headerLines) {
    const i = line.indexOf(':')
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim())
  }
  const requestId = requestIdOf(headers.get('x-request-id'))
  const path = requestLine.split(' ')[1] ?? ''
  const started = process.hrtime.bigint()
  let status = 200
  let message = ''
  try {
    if (!path.startsWith('/') || path.length < 2 || path.indexOf('/', 1) >= 0) throw Object.assign(new Error('Bad Request'), { status: 400 })
    await touchBlock(decodePath(path.slice(1).split('?')[0] ?? ''), tokenFromAuthorization(headers.get('authorization')), deps)
  } catch (err) {
    status = isKeepError(err) ? err.status : ((err as { status?: number }).status ?? 500)
    message = isKeepError(err) || status === 400 ? (err as Error).message : 'Internal Server Error'
    if (status >= 500) deps.logger.error({ err, reqId: requestId }, 'TOUCH failed')
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  deps.metrics.observeRequest('touch_block', 'TOUCH', status, seconds, 0, 0)
  logAccess(deps.logger, {
    reqId: requestId,
    remoteAddr: socket.remoteAddress,
    forwardedFor: headers.get('x-forwarded-for') ?? '',
    method: 'TOUCH',
    path: path.split('?')[0] ?? '',
    status,
    bytesIn: 0,
    bytesOut: 0,
    seconds,
  })
  respond(socket, status, message, requestId)
}

/** Bad percent-encoding is the client's fault: 400, as on every other route (PROTOCOL.md §3). */
function decodePath(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    throw new KeepError('KEEP_BAD_REQUEST', 'bad percent-encoding in the path')
  }
}

const REASONS: Record<number, string> = { 200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error' }

function respond(socket: Socket, status: number, message: string, requestId: string | undefined): void {
  const body = message ? `${message}\n` : ''
  const lines = [
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: text/plain',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-Id: ${requestId ?? requestIdOf(undefined)}`,
    ...Object.entries(CORS_HEADERS).map(([k, v]) => `${k}: ${v}`),
  ]
  if (socket.writable) socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`)
  else socket.destroy()
}
