import type { ServerResponse } from 'node:http'
import { KeepError } from '../../shared/errors.js'
import { EMPTY_BLOCK_HASH } from '../../shared/hash.js'
import { parseLocator } from '../../shared/locator.js'
import { MAX_BLOCK_SIZE } from '../volumes/volume.js'
import { readBuffers } from '../volumes/buffer-pool.js'
import type { ReadOptions } from '../keepstore.js'
import type { AppDeps, KeepContext } from './context.js'
import { requireAdmin } from './context.js'
import { requireToken } from '../../shared/auth.js'
import { guardIdle } from '../../shared/read-body.js'
import { headerOf } from './middleware.js'

type Handler = (ctx: KeepContext, deps: AppDeps) => Promise<void>

const TEXT_PLAIN = 'text/plain; charset=utf-8'

function parseClasses(header: string): string[] | undefined {
  const classes = header.split(',').map((s) => s.trim()).filter(Boolean)
  return classes.length ? classes : undefined
}

/** `class=n, …` in class order (one class, the usual case, needs no sorting). */
function confirmedHeader(confirmed: Record<string, number>): string {
  const entries = Object.entries(confirmed)
  if (entries.length > 1) entries.sort(([a], [b]) => (a < b ? -1 : 1))
  return entries.map(([c, n]) => `${c}=${n}`).join(', ')
}

export const putBlock: Handler = async (ctx, { keepstore, bodyIdleTimeoutMs }) => {
  const loc = parseLocator(ctx.params.locator ?? '')
  const headers = ctx.req.headers
  const declared = headers['content-length']
  if (declared && Number(declared) > MAX_BLOCK_SIZE) throw new KeepError('KEEP_TOO_LARGE', 'block exceeds 64 MiB')
  if (declared && loc.size !== undefined && Number(declared) !== loc.size) {
    throw new KeepError('KEEP_SIZE_MISMATCH', `size hint ${loc.size} but Content-Length ${declared}`)
  }
  const classesHeader = headerOf(headers['x-keep-storage-classes'])
  const classes = classesHeader ? parseClasses(classesHeader) : undefined
  const ac = new AbortController()
  ctx.req.once('aborted', () => ac.abort())
  const body = guardIdle(ctx.req, { idleTimeoutMs: bodyIdleTimeoutMs })
  const result = await keepstore.put(loc.hash, body, {
    ...(loc.size !== undefined ? { expectedSize: loc.size } : {}),
    ...(classes ? { classes } : {}),
    signal: ac.signal,
  })
  ctx.state.bytesIn = result.size
  // Straight on the response: what ctx.set does, without re-validating each header per PUT.
  const res = ctx.res
  res.setHeader('X-Keep-Replicas-Stored', String(result.replicas))
  res.setHeader('X-Keep-Storage-Classes-Confirmed', confirmedHeader(result.classesConfirmed))
  res.setHeader('Content-Type', TEXT_PLAIN) // what `ctx.type = 'text/plain'` sets, without a MIME lookup per PUT
  ctx.body = `${keepstore.locatorFor(loc.hash, result.size, ctx.state.token)}\n`
}

/**
 * Locator checks common to GET and HEAD (PROTOCOL.md §2 order), before any
 * disk access; then how to read: the size hint, and a signal that aborts the
 * read when the client leaves ('close' also fires after every completed
 * response: only a cut-off one aborts).
 */
function readableLocator(ctx: KeepContext, deps: AppDeps, needSize: boolean): { hash: string; read: ReadOptions } {
  const loc = parseLocator(ctx.params.locator ?? '')
  if (needSize && loc.size === undefined && loc.hash !== EMPTY_BLOCK_HASH) {
    throw new KeepError('KEEP_METHOD_NOT_ALLOWED', 'a size hint is required')
  }
  deps.keepstore.checkRead(loc, ctx.state.token)
  const ac = new AbortController()
  ctx.res.once('close', () => {
    if (!ctx.res.writableFinished) ac.abort()
  })
  return { hash: loc.hash, read: { signal: ac.signal, size: loc.size } }
}

export const getBlock: Handler = async (ctx, deps) => {
  const { hash, read } = readableLocator(ctx, deps, true)
  const block = await deps.keepstore.open(hash, read)
  // From here on we write the response ourselves, so that a hash failure found
  // after bytes went out cuts the connection instead of completing a body.
  ctx.respond = false
  const res = ctx.res
  // The headers set through ctx (request id, CORS) are on `res` already: Koa sets them there.
  res.statusCode = 200
  res.setHeader('Content-Type', 'application/octet-stream')
  res.setHeader('Content-Length', String(block.size))
  ctx.state.bytesOut = block.size
  if (block.first === undefined || block.first.length === block.size) {
    // Whole block in one verified chunk (the volume holds back the last chunk until its hash checks out).
    block.rest.resume()
    const first = block.first
    res.end(first, () => first && readBuffers.give(first))
    return
  }
  try {
    send(res, block.first)
    for await (const chunk of block.rest) {
      if (!send(res, chunk as Buffer)) await drained(res)
    }
    res.end()
  } catch (err) {
    res.destroy()
    block.rest.destroy()
    deps.logger.warn({ err, hash, mount: block.mount.uuid, reqId: ctx.state.requestId }, 'GET stopped short')
  }
}

/**
 * Writes one chunk of a block; once the socket has written it (not before:
 * it is about to be read into again) it goes back to the read buffer pool.
 * False: wait for 'drain'.
 */
function send(res: ServerResponse, chunk: Buffer): boolean {
  return res.write(chunk, (err) => {
    if (!err) readBuffers.give(chunk)
  })
}

/** Resolves on 'drain'; fails when the response closes first (the client left). */
function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return Promise.reject(new KeepError('KEEP_TIMEOUT', 'the client left'))
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      res.off('drain', onDrain)
      res.off('close', onClose)
      if (err) reject(err)
      else resolve()
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new KeepError('KEEP_TIMEOUT', 'the client left'))
    res.on('drain', onDrain)
    res.on('close', onClose)
  })
}

export const headBlock: Handler = async (ctx, deps) => {
  const { hash, read } = readableLocator(ctx, deps, false)
  const stat = await deps.keepstore.head(hash, read)
  ctx.status = 200
  ctx.length = stat.size
}

/** An admin action on one block by its locator: 200 with an empty body. */
function adminBlockAction(action: (deps: AppDeps, hash: string) => Promise<unknown>): Handler {
  return async (ctx, deps) => {
    requireAdmin(ctx, deps)
    await action(deps, parseLocator(ctx.params.locator ?? '').hash)
    ctx.status = 200
    ctx.body = ''
  }
}

export const deleteBlock = adminBlockAction((deps, hash) => deps.keepstore.delete(hash))
export const untrashBlock = adminBlockAction((deps, hash) => deps.keepstore.untrash(hash))

/** TOUCH arrives outside Koa (Node's parser rejects the method): see client-error.ts. */
export async function touchBlock(locator: string, token: string | undefined, deps: AppDeps): Promise<void> {
  requireToken(token, deps.keepstore.cluster.systemRootToken)
  const loc = parseLocator(locator)
  await deps.keepstore.touch(loc.hash)
}
