import Koa from 'koa'
import { KeepError } from '../../shared/errors.js'
import type { Slots } from '../slots.js'
import type { AppDeps } from './context.js'
import { observe, limitConcurrency } from './middleware.js'
import { createRoutes } from './routes.js'

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
 * The keepstore's Koa app: observe → OPTIONS, path check and limits → routes
 * → 400 for anything else. Block writes take a slot of their own pool, never
 * one of the general pool, so slow uploads cannot starve reads or list
 * updates. Few layers: each costs a promise and a closure per request.
 */
export function createApp(deps: AppDeps, options: AppOptions): Koa {
  const app = new Koa()
  app.silent = true // errors are rendered and logged by `observe`
  const limits = limitConcurrency((ctx) => (EXEMPT.has(ctx.path) ? undefined : isBlockWrite(ctx) ? options.writes : options.requests))
  app.use(observe(deps))
  app.use((ctx, next) => {
    if (ctx.method === 'OPTIONS') {
      ctx.state.route = 'options'
      ctx.status = 200
      ctx.body = ''
      return Promise.resolve()
    }
    requireDecodablePath(ctx.path)
    return limits(ctx, next)
  })
  app.use(createRoutes(deps))
  app.use(async () => {
    // Unknown path or method: 400, never 404/405 from routing (PROTOCOL.md §3).
    throw new KeepError('KEEP_BAD_REQUEST', 'Bad Request')
  })
  return app
}
