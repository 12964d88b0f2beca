import { KeepError } from '../../shared/errors.js'
import { readBody } from '../../shared/read-body.js'
import {
  parsePullListBody,
  parseTrashListBody,
  serializePullList,
  serializeTrashList,
  listDigest,
  type ListContext,
} from '../../shared/worklist-items.js'
import { serializeStatus, type Worklist } from '../worklist.js'
import { FENCE_HEADER, parseFence } from '../fence.js'
import type { AppDeps, KeepContext } from './context.js'
import { requireAdmin } from './context.js'

type Handler = (ctx: KeepContext, deps: AppDeps) => Promise<void>

/** Lists are capped: a 64 MiB list is ~300 k items, more than any sane run sends. */
export const MAX_LIST_BYTES = 64 * 1024 * 1024

function worklists(deps: AppDeps): NonNullable<AppDeps['worklists']> {
  if (!deps.worklists) throw new KeepError('KEEP_UNAVAILABLE', 'worklists are not running')
  return deps.worklists
}

function listContext(deps: AppDeps): ListContext {
  const w = worklists(deps)
  return { isKnownServer: (url) => w.isKnownServer(url), isKnownMount: (uuid) => deps.keepstore.mount(uuid) !== undefined }
}

/**
 * PUT /pull and PUT /trash: validate the whole list first (any fault → 400 and
 * the previous list stays), then replace atomically; 200 only once persisted.
 * A list carrying an `X-Keep-Fence` older than one already applied → 409, and
 * the previous list stays (PROTOCOL §4).
 */
function putList<T>(name: 'pull' | 'trash', parse: (body: Uint8Array, ctx: ListContext) => Promise<T[]>, pick: (deps: AppDeps) => Worklist<T>): Handler {
  return async (ctx, deps) => {
    requireAdmin(ctx, deps)
    const fence = parseFence(ctx.req.headers[FENCE_HEADER])
    const body = await readBody(ctx.req, MAX_LIST_BYTES, { idleTimeoutMs: deps.bodyIdleTimeoutMs })
    ctx.state.bytesIn = body.length
    const items = await parse(body, listContext(deps))
    const digest = listDigest(body)
    const receivedAt = new Date(deps.keepstore.now())
    await worklists(deps).fence.apply(fence, (save) => pick(deps).replace(items, { digest, receivedAt, fence: save }))
    const fenced = fence === undefined ? {} : { fence: fence.toString() }
    deps.logger.info({ list: name, count: items.length, digest, ...fenced, reqId: ctx.state.requestId }, `${name} list accepted`)
    ctx.status = 200
    ctx.body = ''
  }
}

function getList<T>(pick: (deps: AppDeps) => Worklist<T>, serialize: (items: T[]) => string): Handler {
  return async (ctx, deps) => {
    requireAdmin(ctx, deps)
    ctx.type = 'application/json'
    ctx.body = `${serializeStatus(pick(deps).status(), serialize)}\n`
  }
}

export const putPullList = putList('pull', parsePullListBody, (d) => worklists(d).pull)
export const putTrashList = putList('trash', parseTrashListBody, (d) => worklists(d).trash)
export const getPullList = getList((d) => worklists(d).pull, serializePullList)
export const getTrashList = getList((d) => worklists(d).trash, serializeTrashList)
