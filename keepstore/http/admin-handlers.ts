import { once } from 'node:events'
import { KeepError } from '../../shared/errors.js'
import { formatIndexLine, isValidIndexPrefix } from '../../shared/index-format.js'
import { requireToken } from '../../shared/auth.js'
import type { MembershipView } from '../../shared/membership.js'
import type { AppDeps, KeepContext } from './context.js'
import { requireAdmin } from './context.js'

type Handler = (ctx: KeepContext, deps: AppDeps) => Promise<void>

const FLUSH_BYTES = 64 * 1024

/**
 * The index prefix from the path or `?prefix=`. Ambiguity is an error, never
 * a silently unfiltered index: the query key given twice or as an array
 * (`prefix[]=a`), or path and query both given and differing → 400.
 */
function prefixOf(ctx: KeepContext): string {
  const keys = Object.keys(ctx.query).filter((k) => k === 'prefix' || k.startsWith('prefix['))
  const fromQuery = ctx.query.prefix
  if (keys.some((k) => k !== 'prefix') || Array.isArray(fromQuery)) {
    throw new KeepError('KEEP_BAD_REQUEST', 'prefix given more than once')
  }
  const fromPath = ctx.params.prefix
  if (fromPath !== undefined && fromQuery !== undefined && fromPath !== fromQuery) {
    throw new KeepError('KEEP_BAD_REQUEST', 'prefix in both path and query, differing')
  }
  const prefix = fromPath ?? fromQuery ?? ''
  if (!isValidIndexPrefix(prefix)) throw new KeepError('KEEP_BAD_REQUEST', 'prefix must be 0-32 lowercase hex digits')
  return prefix
}

/**
 * Streams index lines, then one empty line. The empty line is how a reader
 * knows the index is complete: when an error happens after output began we end
 * the body without it (and cannot change the status any more).
 */
async function streamIndex(ctx: KeepContext, deps: AppDeps, mountUuid: string | undefined): Promise<void> {
  requireAdmin(ctx, deps)
  const prefix = prefixOf(ctx)
  if (mountUuid !== undefined) deps.keepstore.requireMount(mountUuid)
  const ac = new AbortController()
  ctx.res.once('close', () => {
    if (!ctx.res.writableFinished) ac.abort()
  })
  const batches = deps.keepstore.index(prefix, mountUuid, ac.signal)[Symbol.asyncIterator]()
  let next = await batches.next() // errors before any output still get a status
  ctx.respond = false
  const res = ctx.res
  res.statusCode = 200 // the headers set through ctx are on `res` already
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  let chunk = ''
  let sent = 0
  const flush = async (): Promise<void> => {
    sent += chunk.length
    if (!res.write(chunk)) await once(res, 'drain', { signal: ac.signal })
    chunk = ''
  }
  try {
    while (!next.done) {
      for (const entry of next.value) chunk += formatIndexLine(entry)
      if (chunk.length >= FLUSH_BYTES) await flush()
      next = await batches.next()
    }
    chunk += '\n'
    await flush()
    res.end()
  } catch (err) {
    deps.logger.error({ err, reqId: ctx.state.requestId }, 'index failed after output began')
    if (!res.destroyed) {
      if (chunk) res.write(chunk)
      res.end()
    }
  } finally {
    ctx.state.bytesOut = sent
    await batches.return?.()
  }
}

export const getIndex: Handler = (ctx, deps) => streamIndex(ctx, deps, undefined)

export const getMountBlocks: Handler = (ctx, deps) => streamIndex(ctx, deps, ctx.params.uuid ?? '')

/**
 * One line per 3-hex prefix, `<prefix> <blocks> <sha256 of that prefix's index
 * lines>`, then one empty line (PROTOCOL.md §3). Computed whole before the
 * first byte goes out, so a failure is a 5xx, never a short answer.
 */
export const getMountDigests: Handler = async (ctx, deps) => {
  requireAdmin(ctx, deps)
  const ac = new AbortController()
  ctx.res.once('close', () => {
    if (!ctx.res.writableFinished) ac.abort()
  })
  const digests = await deps.keepstore.digests(ctx.params.uuid ?? '', ac.signal)
  let body = ''
  for (const d of digests) body += `${d.prefix} ${d.blocks} ${d.sha256}\n`
  body += '\n'
  ctx.type = 'text/plain; charset=utf-8'
  ctx.body = body
  ctx.state.bytesOut = body.length
}

export const getMounts: Handler = async (ctx, deps) => {
  requireAdmin(ctx, deps)
  ctx.body = deps.keepstore.mounts.map((m) => m.toJSON())
}

export const getStatus: Handler = async (ctx, deps) => {
  requireAdmin(ctx, deps)
  const ks = deps.keepstore
  await Promise.all(ks.mounts.map((m) => m.refresh(true)))
  ctx.body = {
    version: deps.version,
    uuid: ks.uuid,
    volumes: ks.mounts.map((m) => ({
      uuid: m.uuid,
      driver: m.volume.driver,
      device_id: m.deviceId,
      free_bytes: m.space().freeBytes,
      total_bytes: m.space().totalBytes,
      errors: m.errors,
      state: m.state,
      read_only: m.readOnly,
      allow_trash: m.allowTrash,
    })),
    pull: deps.worklists?.pull.counts(),
    trash: deps.worklists?.trash.counts(),
    scrub: deps.scrubber?.status(),
    membership: deps.membership && membershipStatus(deps.membership),
  }
}

/** Live membership as this keepstore sees it: `etcd` is `ok` while the view is current, else every state is `unknown`. */
function membershipStatus(view: MembershipView): Record<string, unknown> {
  return {
    etcd: view.current ? 'ok' : 'unreachable',
    keepstores: view.members().map((m) => ({
      uuid: m.uuid,
      url: m.url,
      state: m.state,
      since: m.since === undefined ? null : new Date(m.since).toISOString(),
    })),
  }
}

/** managementToken endpoints: none configured → 404 `disabled`. */
function requireManagement(ctx: KeepContext, deps: AppDeps): void {
  requireToken(ctx.state.token, deps.keepstore.cluster.managementToken)
}

export const getHealth: Handler = async (ctx, deps) => {
  requireManagement(ctx, deps)
  ctx.body = { health: 'OK' }
}

export const getMetrics: Handler = async (ctx, deps) => {
  requireManagement(ctx, deps)
  ctx.type = deps.metrics.registry.contentType
  ctx.body = await deps.metrics.registry.metrics()
}
