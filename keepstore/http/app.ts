import Koa from 'koa'
import { KeepError } from '../../shared/errors.js'
import type { Slots } from '../slots.js'
import type { AppDeps } from './context.js'
import { observe, limitConcurrency } from './middleware.js'
import { createRouter } from './routes.js'

export interface AppOptions {
  /** Requests in general (reads, lists, admin). */
  requests: Slots
  /** Block writes: PUT /<locator> (pull writes share it, see worklists.ts). */
  writes: Slots
}

const EXEMPT = new Set(['/_health/ping', '/metrics'])
const LIST_PUTS = new Set(['/pull', '/trash'])

/** A PUT of a block: anything PUT but the lists and untrash (a bad path fails fast either way). */
export function isBlockWrite(ctx: Pick<Koa.Context, 'method' | 'path'>): boolean {
  return ctx.method === 'PUT' && !LIST_PUTS.has(ctx.path) && !ctx.path.startsWith('/untrash/')
}

/** Bad percent-encoding anywhere in the path → 400 (PROTOCOL.md §3), before any route sees it. */
function requireDecodablePath(path: string): void {
  if (!path.includes('%')) return
  try {
    decodeURIComponent(path)
  } catch {
    throw new KeepError('KEEP_BAD_REQUEST', 'bad percent-encoding in the path')
  }
}

/**
 * The keepstore's Koa app: observe → OPTIONS → path check → limits → routes →
 * 400 for anything else. Block writes take a slot of their own pool, never one
 * of the general pool, so slow uploads cannot starve reads or list updates.
 */
export function createApp(deps: AppDeps, options: AppOptions): Koa {
  const app = new Koa()
  app.silent = true // errors are rendered and logged by `observe`
  const router = createRouter(deps)
  app.use(observe(deps))
  app.use(async (ctx, next) => {
    if (ctx.method !== 'OPTIONS') return next()
    ctx.state.route = 'options'
    ctx.status = 200
    ctx.body = ''
  })
  app.use(async (ctx, next) => {
    requireDecodablePath(ctx.path)
    return next()
  })
  app.use(limitConcurrency(options.requests, (ctx) => !EXEMPT.has(ctx.path) && !isBlockWrite(ctx)))
  app.use(limitConcurrency(options.writes, isBlockWrite))
  app.use(router.routes())
  app.use(async () => {
    // Unknown path or method: 400, never 404/405 from routing (PROTOCOL.md §3).
    throw new KeepError('KEEP_BAD_REQUEST', 'Bad Request')
  })
  return app
}
