import t from 'tap'
import { openStateDb, type StateDb, type StateSublevel } from '../../keepstore/state-db.js'
import { createWorklistStore, itemKey, WRITE_CHUNK } from '../../keepstore/worklist-store.js'
import { isKeepError } from '../../shared/errors.js'
import { clusterConfig, freePorts, call, ADMIN_TOKEN } from '../helpers/cluster.js'
import { startKeepstore } from '../../keepstore/server.js'
import { createLogger } from '../../shared/logger.js'
import { listDigest } from '../../shared/worklist-items.js'

const codec = { encode: (s: string): string => s, decode: (s: string): string => s }
const meta = { digest: 'd', receivedAt: new Date(0) }

/** What a full disk looks like from classic-level: LEVEL_IO_ERROR naming ENOSPC in its message. */
function enospc(): Error {
  return Object.assign(new Error('IO error: /state/000005.log: No space left on device'), { code: 'LEVEL_IO_ERROR' })
}

interface Spy {
  batches: Array<Record<string, unknown> | undefined>
  full: boolean
  /** When set, batches after this many recorded ones fail as on a full disk. */
  fullAfter?: number | undefined
}

/** Wraps `target` so that `override` answers for the named properties (methods stay bound to the target). */
function wrap<T extends object>(target: T, override: Record<string, unknown>): T {
  return new Proxy(target, {
    get(obj, prop) {
      if (typeof prop === 'string' && prop in override) return override[prop]
      const value = Reflect.get(obj, prop, obj) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(obj) : value
    },
  })
}

/**
 * A sublevel whose batch writes (array batches, and chained batches of its
 * root database) are recorded, and fail as on a full disk while `spy.full`.
 */
function spied(sub: StateSublevel, spy: Spy): StateSublevel {
  const record = (options: Record<string, unknown> | undefined): Promise<void> | undefined => {
    spy.batches.push(options)
    const full = spy.full || (spy.fullAfter !== undefined && spy.batches.length > spy.fullAfter)
    return full ? Promise.reject(enospc()) : undefined
  }
  const root = sub.db
  const spiedRoot = wrap(root, {
    batch: (...args: unknown[]) => {
      if (args.length > 0) return record(args[1] as Record<string, unknown>) ?? (root.batch as (...a: unknown[]) => unknown)(...args)
      const chained = root.batch()
      return wrap(chained, {
        write: (options?: Record<string, unknown>) => record(options) ?? chained.write(options as object),
      })
    },
  })
  return wrap(sub, {
    db: spiedRoot,
    batch: (ops: unknown, options?: Record<string, unknown>) => record(options) ?? (sub.batch as (o: unknown, p?: unknown) => Promise<void>)(ops, options),
  })
}

function spiedDb(db: StateDb, spy: Spy): StateDb {
  return { location: db.location, sublevel: (name) => spied(db.sublevel(name), spy), close: () => db.close() }
}

t.test('worklist store: a replace is one batch written with sync, so a power cut after the 200 keeps it', async (t) => {
  const db = await openStateDb(t.testdir())
  t.teardown(() => db.close())
  const spy: Spy = { batches: [], full: false }
  const store = createWorklistStore(spied(db.sublevel('pull'), spy), codec)
  await store.load()
  await store.replace(['a', 'b'], meta)
  t.equal(spy.batches.length, 1)
  t.match(spy.batches[0], { sync: true })
})

t.test('worklist store: stateDir full → KEEP_FULL and the previous list stays', async (t) => {
  const db = await openStateDb(t.testdir())
  t.teardown(() => db.close())
  const spy: Spy = { batches: [], full: false }
  const store = createWorklistStore(spied(db.sublevel('pull'), spy), codec)
  await store.load()
  await store.replace(['old'], meta)
  spy.full = true
  const err = await store.replace(['new'], meta).catch((e: unknown) => e)
  t.ok(isKeepError(err, 'KEEP_FULL'), 'mapped to KEEP_FULL (507)')
  spy.full = false
  const again = createWorklistStore(db.sublevel('pull'), codec)
  t.same((await again.load()).items.map((i) => i.item), ['old'])
})

t.test('worklist store: a long list goes in several batches, every one synced, and loads back whole and in order', async (t) => {
  const db = await openStateDb(t.testdir())
  t.teardown(() => db.close())
  const spy: Spy = { batches: [], full: false }
  const store = createWorklistStore(spied(db.sublevel('pull'), spy), codec)
  await store.load()
  const items = Array.from({ length: 2 * WRITE_CHUNK + 1 }, (_, i) => `item ${i}`)
  await store.replace(items, meta)
  t.equal(spy.batches.length, 3)
  t.ok(spy.batches.every((options) => options?.['sync'] === true), 'every batch synced')
  const again = createWorklistStore(db.sublevel('pull'), codec)
  t.same((await again.load()).items.map((i) => i.item), items)
})

t.test('worklist store: after a crash midway through a replace (items of the next generation written, meta not switched) the old list loads and the partial one is cleared', async (t) => {
  const db = await openStateDb(t.testdir())
  t.teardown(() => db.close())
  const sub = db.sublevel('pull')
  const store = createWorklistStore(sub, codec)
  await store.load()
  await store.replace(['old 1', 'old 2'], meta)
  // What a crash between the batches of the next replace leaves: generation 2 in part, META naming 1.
  await sub.batch(Array.from({ length: 3 }, (_, seq) => ({ type: 'put' as const, key: itemKey(2, seq), value: `new ${seq}` })))
  const again = createWorklistStore(sub, codec)
  t.same((await again.load()).items.map((i) => i.item), ['old 1', 'old 2'])
  const keys: string[] = []
  for await (const key of sub.keys()) keys.push(key)
  t.same(keys, [itemKey(1, 0), itemKey(1, 1), 'meta'], 'generation 2 removed')
})

t.test('worklist store: a replace failing after its first batch keeps the previous list, and a later shorter list never picks up its items', async (t) => {
  const db = await openStateDb(t.testdir())
  t.teardown(() => db.close())
  const spy: Spy = { batches: [], full: false }
  const store = createWorklistStore(spied(db.sublevel('pull'), spy), codec)
  await store.load()
  await store.replace(['old'], meta)
  spy.fullAfter = spy.batches.length + 1
  const long = Array.from({ length: 2 * WRITE_CHUNK }, (_, i) => `long ${i}`)
  const err = await store.replace(long, meta).catch((e: unknown) => e)
  t.ok(isKeepError(err, 'KEEP_FULL'), 'mapped to KEEP_FULL (507)')
  spy.fullAfter = undefined
  await store.replace(['short'], meta)
  const again = createWorklistStore(db.sublevel('pull'), codec)
  t.same((await again.load()).items.map((i) => i.item), ['short'])
})

t.test('PUT /pull and PUT /trash with stateDir full → 507 and the previous list stays', async (t) => {
  const dir = t.testdir()
  const [port] = await freePorts(1)
  const config = clusterConfig(dir, [port!])
  const spy: Spy = { batches: [], full: false }
  const ks = await startKeepstore(config, { logger: createLogger({ level: 'silent' }), wrapStateDb: (db) => spiedDb(db, spy) })
  t.teardown(() => ks.close())
  const locator = 'acbd18db4cc2f85cedef654fccc4a4d8+3'
  const trash = JSON.stringify([{ locator, block_mtime: 1 }])
  const pull = JSON.stringify([{ locator, servers: [ks.url] }])
  t.equal((await call(ks.url, 'PUT', '/trash', { token: ADMIN_TOKEN, body: trash })).status, 200)
  t.equal((await call(ks.url, 'PUT', '/pull', { token: ADMIN_TOKEN, body: pull })).status, 200)
  spy.full = true
  t.equal((await call(ks.url, 'PUT', '/trash', { token: ADMIN_TOKEN, body: '[]' })).status, 507, 'trash list refused')
  t.equal((await call(ks.url, 'PUT', '/pull', { token: ADMIN_TOKEN, body: '[]' })).status, 507, 'pull list refused')
  spy.full = false
  const digest = async (name: string): Promise<string> => (JSON.parse((await call(ks.url, 'GET', `/${name}`, { token: ADMIN_TOKEN })).text) as { digest: string }).digest
  t.equal(await digest('trash'), listDigest(trash), 'the previous trash list stays')
  t.equal(await digest('pull'), listDigest(pull), 'the previous pull list stays')
})
