import { randomBytes } from 'node:crypto'
import type Koa from 'koa'
import { KeepError, isKeepError } from '../../shared/errors.js'
import type { AppDeps, KeepContext } from './context.js'
import type { Slots } from '../slots.js'
import { tokenFromAuthorization } from '../../shared/auth.js'
import { redactSignatures, type Logger } from '../../shared/logger.js'

export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, HEAD, PUT, OPTIONS',
  'Access-Control-Allow-Headers':
    'Authorization, Content-Length, Content-Type, X-Keep-Desired-Replicas, X-Keep-Signature, X-Keep-Storage-Classes',
  'Access-Control-Expose-Headers': 'X-Keep-Locator, X-Keep-Replicas-Stored, X-Keep-Storage-Classes-Confirmed',
}

/** The same headers as pairs, set straight on the response (Koa's `ctx.set` re-validates them per request). */
const CORS_ENTRIES = Object.entries(CORS_HEADERS)

const REQUEST_ID = /^[\w.:-]{1,128}$/

// Random bytes drawn in batches: one syscall per 1,638 request ids, not one each.
let pool = Buffer.alloc(0)
let offset = 0

export function newRequestId(): string {
  if (offset + 10 > pool.length) {
    pool = randomBytes(16 * 1024)
    offset = 0
  }
  offset += 10
  return `req-${pool.toString('hex', offset - 10, offset)}`
}

/** Echoes a sane X-Request-Id or makes one. */
export function requestIdOf(header: string | undefined): string {
  return header && REQUEST_ID.test(header) ? header : newRequestId()
}

/**
 * Outermost middleware: request id, CORS, the one error renderer (KeepError →
 * status + one line of text), access log and request metrics.
 */
export function observe(deps: AppDeps): Koa.Middleware {
  return async (ctx, next) => {
    const c = ctx as KeepContext
    const started = process.hrtime.bigint()
    const { req, res } = ctx
    // Read now: once the response is done, Node may have detached the socket (req.socket = null).
    const remoteAddr = req.socket?.remoteAddress
    // Straight from Node's parsed headers (what ctx.get returns), without Koa's accessors.
    const headers = req.headers
    c.state.requestId = requestIdOf(headerOf(headers['x-request-id']))
    c.state.route = 'unknown'
    c.state.token = tokenFromAuthorization(headerOf(headers.authorization))
    c.state.bytesIn = 0
    c.state.bytesOut = 0
    res.setHeader('X-Request-Id', c.state.requestId)
    for (const [name, value] of CORS_ENTRIES) res.setHeader(name, value)
    try {
      await next()
    } catch (err) {
      renderError(c, err, deps)
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const status = ctx.respond === false ? ctx.res.statusCode : ctx.status
    deps.metrics.observeRequest(c.state.route, ctx.method, status, seconds, c.state.bytesIn, c.state.bytesOut)
    logAccess(deps.logger, {
      reqId: c.state.requestId,
      remoteAddr,
      forwardedFor: headerOf(headers['x-forwarded-for']) ?? '',
      method: ctx.method,
      path: ctx.path,
      status,
      bytesIn: c.state.bytesIn,
      bytesOut: c.state.bytesOut,
      seconds,
    })
  }
}

/** A request header as one string ('' counts as absent), as `ctx.get` gives it. */
export function headerOf(value: string | string[] | undefined): string | undefined {
  if (value === undefined || value === '') return undefined
  return typeof value === 'string' ? value : value.join(', ')
}

export interface AccessEntry {
  reqId: string
  remoteAddr: string | undefined
  /** The X-Forwarded-For header as sent ('' when absent). */
  forwardedFor: string
  method: string
  /** Without the query string (a Keep client may put a token there). */
  path: string
  status: number
  bytesIn: number
  bytesOut: number
  seconds: number
}

const MAX_FORWARDED_FOR = 256

/**
 * The access log: one `request` line per request at info (warn for a 5xx),
 * as Keep logs each response. Signatures in the path are scrubbed (here and
 * again by the logger's stream hook); tokens never reach it.
 */
export function logAccess(logger: Logger, e: AccessEntry): void {
  const line = {
    reqId: e.reqId,
    remoteAddr: e.remoteAddr,
    forwardedFor: e.forwardedFor ? e.forwardedFor.slice(0, MAX_FORWARDED_FOR) : undefined,
    method: e.method,
    path: redactPath(e.path),
    status: e.status,
    bytesIn: e.bytesIn,
    bytesOut: e.bytesOut,
    ms: Math.round(e.seconds * 1e4) / 10,
  }
  if (e.status >= 500) logger.warn(line, 'request')
  else logger.info(line, 'request')
}

/**
 * The body is the error's one-line message, which never holds a path (the
 * volumes keep paths in the error's `path` and cause); a server-side failure
 * is logged whole, path included, for the operator.
 */
function renderError(ctx: KeepContext, err: unknown, deps: AppDeps): void {
  const keepErr = isKeepError(err) ? err : undefined
  if (!keepErr) deps.logger.error({ err, reqId: ctx.state.requestId }, 'unhandled error')
  else if (keepErr.status >= 500) deps.logger.warn({ err, reqId: ctx.state.requestId }, 'request failed')
  const status = keepErr ? keepErr.status : 500
  const message = keepErr ? keepErr.message : 'Internal Server Error'
  if (ctx.headerSent || ctx.respond === false) {
    // Too late for a status: cut the connection so the client sees a short body.
    ctx.res.destroy()
    return
  }
  ctx.status = status
  ctx.type = 'text/plain'
  ctx.body = `${withoutPaths(message.split('\n')[0] ?? '')}\n`
  if (!ctx.req.complete) ctx.set('Connection', 'close') // its body was never read
}

/**
 * Belt and braces for PROTOCOL §3 ("never a filesystem path"): an absolute
 * path that slipped into a message from a library (`… open '/var/x'`) becomes
 * `<path>`. URLs are left alone (their slashes follow a colon).
 */
export function withoutPaths(line: string): string {
  return line.includes('/') ? line.replace(/(^|[\s'"(=,])\/[^\s'")]*/g, '$1<path>') : line
}

/** Signatures ride in locators; never log them. */
export function redactPath(path: string): string {
  return redactSignatures(path)
}

/**
 * Runs each request holding a slot of the pool `poolOf` picks for it (none:
 * no limit). Pools queue, then answer 503 at once beyond the queue; a request
 * whose client goes away while it waits leaves the queue. One middleware for
 * every pool: each layer of Koa middleware costs a promise per request.
 */
export function limitConcurrency(poolOf: (ctx: Koa.Context) => Slots | undefined): Koa.Middleware {
  return (ctx, next) => {
    const slots = poolOf(ctx)
    return slots ? holdSlot(slots, ctx, next) : next()
  }
}

async function holdSlot(slots: Slots, ctx: Koa.Context, next: Koa.Next): Promise<void> {
  // A free slot needs no queueing machinery (most requests, and the cheap path).
  let release = slots.tryAcquire()
  if (!release) {
    const ac = new AbortController()
    const onClose = (): void => ac.abort(new KeepError('KEEP_UNAVAILABLE', 'client went away while queued'))
    ctx.res.once('close', onClose)
    try {
      release = await slots.acquire({ signal: ac.signal })
    } finally {
      ctx.res.off('close', onClose)
    }
  }
  try {
    await next()
  } finally {
    release()
  }
}
