import Router from '@koa/router'
import type Koa from 'koa'
import type { AppDeps, KeepContext } from './context.js'
import { putBlock, getBlock, headBlock, deleteBlock, untrashBlock } from './block-handlers.js'
import { getIndex, getMountBlocks, getMountDigests, getMounts, getStatus, getHealth, getMetrics } from './admin-handlers.js'
import { putPullList, getPullList, putTrashList, getTrashList } from './list-handlers.js'

type Handler = (ctx: KeepContext, deps: AppDeps) => Promise<void>
type Method = 'get' | 'head' | 'put' | 'delete'

/**
 * The route table of PROTOCOL.md §3. Order matters: static paths come before
 * `/:locator` (PUT /pull must never be taken for a block named "pull"). TOUCH
 * never reaches Koa (see client-error.ts); OPTIONS is answered before routing.
 */
export const ROUTES: ReadonlyArray<readonly [Method, string, string, Handler]> = [
  ['get', '/_health/ping', 'health', getHealth],
  ['get', '/metrics', 'metrics', getMetrics],
  ['get', '/status', 'status', getStatus],
  ['get', '/index', 'index', getIndex],
  ['get', '/index/', 'index', getIndex],
  ['get', '/index/:prefix', 'index', getIndex],
  ['get', '/mounts', 'mounts', getMounts],
  ['get', '/mounts/:uuid/blocks', 'mount_blocks', getMountBlocks],
  ['get', '/mounts/:uuid/blocks/', 'mount_blocks', getMountBlocks],
  ['get', '/mounts/:uuid/blocks/:prefix', 'mount_blocks', getMountBlocks],
  ['get', '/mounts/:uuid/digests', 'mount_digests', getMountDigests],
  ['put', '/pull', 'put_pull', putPullList],
  ['get', '/pull', 'get_pull', getPullList],
  ['put', '/trash', 'put_trash', putTrashList],
  ['get', '/trash', 'get_trash', getTrashList],
  ['put', '/untrash/:locator', 'untrash', untrashBlock],
  ['put', '/:locator', 'put_block', putBlock],
  // Before GET: @koa/router also answers HEAD with a GET route.
  ['head', '/:locator', 'head_block', headBlock],
  ['get', '/:locator', 'get_block', getBlock],
  // As Keep's router (TestBlockRead_DoubleSlash): old clients read `//<locator>`; no other route takes `//`.
  ['head', '//:locator', 'head_block', headBlock],
  ['get', '//:locator', 'get_block', getBlock],
  ['delete', '/:locator', 'delete_block', deleteBlock],
]

export function createRouter(deps: AppDeps): Router {
  const router = new Router({ strict: true })
  for (const [method, path, name, handler] of ROUTES) {
    router[method](path, (ctx: Koa.Context) => {
      const c = ctx as unknown as KeepContext
      c.state.route = name
      return handler(c, deps)
    })
  }
  return router
}

/**
 * A path `/:locator` takes for sure: a block hash, then hints, without `/` or
 * percent-encoding (so the router's decoding would change nothing).
 */
const PLAIN_BLOCK_PATH = /^\/[0-9a-f]{32}(?:\+[^/%]*)?$/

/**
 * The router, with the block routes (`/:locator`: nearly every request)
 * dispatched before it. No static route has such a path, so the outcome is
 * the router's: same route name, handler and `params.locator`; without
 * trying every route's pattern in turn per GET and PUT. Any other path
 * (`//<locator>`, percent-encoded, not a hash) goes through the router.
 */
export function createRoutes(deps: AppDeps): Koa.Middleware {
  const routes = createRouter(deps).routes() as unknown as Koa.Middleware
  const blocks = new Map<string, { name: string; handler: Handler }>()
  for (const [method, path, name, handler] of ROUTES) {
    if (path === '/:locator') blocks.set(method.toUpperCase(), { name, handler })
  }
  return (ctx, next) => {
    const block = blocks.get(ctx.method)
    const path = ctx.path
    if (block && PLAIN_BLOCK_PATH.test(path)) {
      const c = ctx as unknown as KeepContext
      c.params = { locator: path.slice(1) }
      c.state.route = block.name
      return block.handler(c, deps)
    }
    return routes(ctx, next)
  }
}
