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
