import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { openStateDb, type StateDb } from '../../keepstore/state-db.js'
import {
  createWorklist,
  serializeStatus,
  type ItemOutcome,
  type Worklist,
  type WorklistCommonOptions,
  type WorklistOptions,
} from '../../keepstore/worklist.js'
import { createWorklistStore, itemKey } from '../../keepstore/worklist-store.js'
import { createLogger } from '../../shared/logger.js'
import { serializeTrashList, type TrashItem } from '../../shared/worklist-items.js'
import { createControlledHandler, immediateHandler } from '../helpers/worklist-handler.js'
import { captureLogger } from '../helpers/cluster.js'

type Handle = WorklistOptions<string>['handle']

const codec = { encode: (s: string): string => s, decode: (s: string): string => s }
const RECEIVED = new Date('2024-02-06T19:57:31.308Z')
const meta = (digest = 'digest-1'): { digest: string; receivedAt: Date } => ({ digest, receivedAt: RECEIVED })
const letters = (s: string): string[] => s.split('')

/** Worklists on one state db, closed before the db at teardown. */
function harness(t: Test, db: StateDb) {
  const open: Array<Worklist<string>> = []
  t.teardown(async () => {
    await Promise.all(open.map((w) => w.close()))
    await db.close()
  })
  return {
    db,
    async start(handle: Handle, extra: Partial<Pick<WorklistCommonOptions<string>, 'concurrency' | 'onOutcome' | 'logger'>> = {}): Promise<Worklist<string>> {
      const worklist = createWorklist<string>({ name: 'test', concurrency: 1, db: db.sublevel('test'), codec, handle, ...extra })
      open.push(worklist)
      await worklist.open()
      return worklist
    },
  }
}

const memory = async (t: Test) => harness(t, await openStateDb(undefined))
const onDisk = async (t: Test, dir = t.testdir()) => harness(t, await openStateDb(dir))
const backends = [
  { name: 'memory-level', make: memory },
  { name: 'level on disk', make: (t: Test) => onDisk(t) },
]

for (const backend of backends) {
  t.test(`worklist (${backend.name}): items run in list order and are counted`, async (t) => {
    const h = await backend.make(t)
    const handler = immediateHandler<string>()
    const worklist = await h.start(handler.handle)
    await worklist.replace(letters('abcde'), meta())
    await worklist.idle()
    t.same(handler.seen, letters('abcde'))
    const status = worklist.status()
    t.match(status, { digest: 'digest-1', received_at: RECEIVED.toISOString(), queued: 0, in_progress: 0, done: 5, failed: 0, skipped: 0 })
    t.same(status.items, [])
  })
}

t.test('worklist: a new worklist is empty and idle at once', async (t) => {
  const worklist = await (await memory(t)).start(immediateHandler<string>().handle)
  t.same(worklist.status(), { received_at: null, digest: null, queued: 0, in_progress: 0, done: 0, failed: 0, skipped: 0, items: [] })
  await worklist.idle()
  t.pass('idle() resolved with nothing to do')
})

t.test('worklist: never more than `concurrency` handlers run, each taking the head in order', async (t) => {
  const handler = createControlledHandler<string>()
  const worklist = await (await memory(t)).start(handler.handle, { concurrency: 2 })
  await worklist.replace(letters('abcde'), meta())
  const [a, b] = await Promise.all([handler.started(0), handler.started(1)])
  t.match(worklist.status(), { queued: 3, in_progress: 2, items: letters('cde') })
  b.finish('done')
  t.equal((await handler.started(2)).item, 'c', 'a freed slot takes the head')
  a.finish('done')
  t.equal((await handler.started(3)).item, 'd')
  for (const call of handler.calls) if (call.item !== 'a' && call.item !== 'b') call.finish('done')
  ;(await handler.started(4)).finish('done')
  await worklist.idle()
  t.same(handler.calls.map((c) => c.item), letters('abcde'))
  t.equal(handler.maxInFlight, 2)
})

t.test('worklist: replace mid-run lets the item in progress finish and starts the new list from its top', async (t) => {
  const handler = createControlledHandler<string>()
  const outcomes: Array<[string, ItemOutcome]> = []
  const worklist = await (await memory(t)).start(handler.handle, { onOutcome: (item, o) => outcomes.push([item, o]) })
  await worklist.replace(letters('abc'), meta())
  const a = await handler.started(0)
  await worklist.replace(letters('xy'), meta('digest-2'))
  t.match(worklist.status(), { digest: 'digest-2', queued: 2, in_progress: 1, done: 0, items: letters('xy') })
  t.notOk(a.signal.aborted, 'the item in progress is not aborted')
  a.finish('done')
  ;(await handler.started(1)).finish('done')
  ;(await handler.started(2)).finish('skipped')
  await worklist.idle()
  t.same(handler.calls.map((c) => c.item), ['a', 'x', 'y'], 'b and c never ran')
  t.match(worklist.status(), { done: 1, skipped: 1 }, 'counters are for the new list only')
  t.same(outcomes, [['a', 'done'], ['x', 'done'], ['y', 'skipped']], 'onOutcome still sees every finished item')
})

t.test('worklist: replace with [] clears the queue; the item in progress finishes', async (t) => {
  const handler = createControlledHandler<string>()
  const worklist = await (await memory(t)).start(handler.handle)
  await worklist.replace(letters('abc'), meta())
  const a = await handler.started(0)
  await worklist.replace([], meta('empty'))
  t.match(worklist.status(), { queued: 0, in_progress: 1, items: [] })
  const idle = worklist.idle()
  a.finish('done')
  await idle
  t.same(handler.calls.map((c) => c.item), ['a'])
})

t.test('worklist: an empty list waits for the next replace', async (t) => {
  const handler = immediateHandler<string>()
  const worklist = await (await memory(t)).start(handler.handle)
  await worklist.replace([], meta())
  await worklist.idle()
  await worklist.replace(['a'], meta())
  await worklist.idle()
  t.same(handler.seen, ['a'])
})

t.test('worklist: concurrent replaces apply in call order; the last one wins', async (t) => {
  const handler = createControlledHandler<string>()
  const worklist = await (await memory(t)).start(handler.handle)
  await worklist.replace(['a'], meta())
  await handler.started(0)
  await Promise.all([worklist.replace(letters('bc'), meta('2')), worklist.replace(letters('de'), meta('3'))])
  t.match(worklist.status(), { digest: '3', items: letters('de') })
})

t.test('worklist: drop removes matching queued items but not the one in progress', async (t) => {
  const h = await onDisk(t)
  const handler = createControlledHandler<string>()
  const worklist = await h.start(handler.handle)
  await worklist.replace(['a1', 'b', 'a2', 'c', 'a3'], meta())
  const a1 = await handler.started(0)
  t.equal(await worklist.drop((item) => item.startsWith('a')), 2)
  t.equal(await worklist.drop(() => false), 0)
  t.same(worklist.status().items, ['b', 'c'])
  a1.finish('done')
  ;(await handler.started(1)).finish('done')
  ;(await handler.started(2)).finish('done')
  await worklist.idle()
  t.same(handler.calls.map((c) => c.item), ['a1', 'b', 'c'])
})

t.test('worklist: a throwing handler counts as failed, is logged, and the loop goes on', async (t) => {
  const outcomes: Record<string, ItemOutcome | Error> = {
    a: 'done',
    b: new Error('boom'),
    c: 'failed',
    d: 'skipped',
    e: 'done',
    f: 'bogus' as ItemOutcome,
  }
  const handler = immediateHandler<string>((item) => outcomes[item] ?? 'done')
  const lines: string[] = []
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk))
      done()
    },
  })
  const logger = createLogger({ level: 'warn', destination })
  const worklist = await (await memory(t)).start(handler.handle, { concurrency: 2, logger })
  await worklist.replace(letters('abcdef'), meta())
  await worklist.idle()
  t.same(handler.seen, letters('abcdef'))
  t.match(worklist.status(), { done: 2, failed: 3, skipped: 1, queued: 0 }, 'a thrown error and a bogus outcome count as failed')
  const logged = lines.map((l) => JSON.parse(l) as { level: number; worklist: string; item: string })
  t.match(logged, [{ level: 40, worklist: 'test', item: 'b' }, { level: 40, worklist: 'test', item: 'f' }])
})

t.test('worklist: idle() waits for the item in progress', async (t) => {
  const handler = createControlledHandler<string>()
  const worklist = await (await memory(t)).start(handler.handle)
  await worklist.replace(['a'], meta())
  const a = await handler.started(0)
  let idle = false
  const waiting = worklist.idle().then(() => {
    idle = true
  })
  await Promise.resolve()
  t.notOk(idle, 'not idle while a runs')
  a.finish('done')
  await waiting
  t.ok(idle)
})

t.test('worklist: close() aborts handlers through their signal, waits, and starts nothing more', async (t) => {
  const handler = createControlledHandler<string>()
  const logs: Array<{ msg?: string }> = []
  const worklist = await (await memory(t)).start(handler.handle, { concurrency: 2, logger: captureLogger(logs) })
  await worklist.replace(letters('abcd'), meta())
  const calls = await Promise.all([handler.started(0), handler.started(1)])
  await worklist.close()
  t.ok(calls.every((c) => c.signal.aborted), 'every handler saw the abort')
  t.notOk(logs.some((l) => l.msg === 'item failed'), 'an item aborted by close is not logged as failed')
  t.equal(handler.calls.length, 2, 'c and d never started')
  await worklist.idle()
  await t.rejects(worklist.replace(['x'], meta()), { code: 'KEEP_INTERNAL' }, 'a closed worklist takes no list')
})

t.test('worklist: misuse is refused', async (t) => {
  const db = await openStateDb(undefined)
  t.teardown(() => db.close())
  const options = { name: 'test', db: db.sublevel('test'), codec, handle: immediateHandler<string>().handle }
  t.throws(() => createWorklist({ ...options, concurrency: 0 }), { code: 'KEEP_CONFIG' })
  const worklist = createWorklist({ ...options, concurrency: 1 })
  await t.rejects(worklist.replace(['a'], meta()), { code: 'KEEP_INTERNAL' }, 'replace before open')
  await worklist.open()
  await t.rejects(worklist.open(), { code: 'KEEP_INTERNAL' }, 'open twice')
  await worklist.close()
})

t.test('worklist persistence: a reopened worklist resumes the rest in order with the same digest', async (t) => {
  const dir = t.testdir()
  const first = await onDisk(t, dir)
  const handler = createControlledHandler<string>()
  const worklist = await first.start(handler.handle)
  await worklist.replace(letters('abcde'), meta('persisted'))
  ;(await handler.started(0)).finish('done')
  ;(await handler.started(1)).finish('failed')
  await handler.started(2)
  await worklist.close()
  await first.db.close()

  const second = await onDisk(t, dir)
  const resumed = immediateHandler<string>()
  const again = await second.start(resumed.handle)
  await again.idle()
  t.same(resumed.seen, letters('cde'), 'the aborted item c runs again, then the rest')
  t.match(again.status(), { digest: 'persisted', received_at: RECEIVED.toISOString(), done: 4, failed: 1, queued: 0 })
})

t.test('worklist persistence: an item in progress when the process dies is resumed', async (t) => {
  const h = await memory(t)
  const handler = createControlledHandler<string>()
  const dying = await h.start(handler.handle)
  await dying.replace(letters('ab'), meta())
  await handler.started(0)
  // The first worklist is never closed before the second one opens the same store: as after a crash.
  const store = createWorklistStore(h.db.sublevel('test'), codec)
  const { items, meta: saved } = await store.load()
  t.same(items.map((i) => i.item), letters('ab'), 'the item in progress is still persisted')
  t.equal(saved.digest, 'digest-1')
  const resumed = immediateHandler<string>()
  const reopened = await h.start(resumed.handle)
  await reopened.idle()
  t.same(resumed.seen, letters('ab'), 'the reopened list runs the interrupted item first, then the rest')
  t.match(reopened.status(), { digest: 'digest-1', done: 2, queued: 0 })
})

t.test('worklist persistence: an item of a replaced list finishing later does not touch the new counters', async (t) => {
  const h = await memory(t)
  const handler = createControlledHandler<string>()
  const worklist = await h.start(handler.handle)
  await worklist.replace(letters('ab'), meta('old'))
  const a = await handler.started(0)
  await worklist.replace(letters('xy'), meta('new'))
  a.finish('failed')
  await handler.started(1)
  const { items, meta: saved } = await createWorklistStore(h.db.sublevel('test'), codec).load()
  t.same(items.map((i) => i.item), letters('xy'), 'the old item is gone, x is still in progress')
  t.same(saved, { digest: 'new', receivedAt: RECEIVED.toISOString(), counters: { done: 0, failed: 0, skipped: 0 } })
})

t.test('worklist persistence: a replace cut short before its meta switch leaves the old list', async (t) => {
  const dir = t.testdir()
  const first = await onDisk(t, dir)
  const worklist = await first.start(createControlledHandler<string>().handle)
  await worklist.replace(letters('abc'), meta('old'))
  await worklist.close()
  const sub = first.db.sublevel('test')
  // The generation after the current one (1), written without the meta switch.
  await sub.batch(letters('xyz').map((item, seq) => ({ type: 'put' as const, key: itemKey(2, seq), value: item })))
  await sub.put(itemKey(0, 0), 'stale')
  await first.db.close()

  const second = await onDisk(t, dir)
  const handler = createControlledHandler<string>()
  const reopened = await second.start(handler.handle)
  t.equal((await handler.started(0)).item, 'a', 'the old list runs from its top')
  t.match(reopened.status(), { digest: 'old', items: letters('bc') })
  const keys = await second.db.sublevel('test').keys().all()
  t.same(keys, [itemKey(1, 0), itemKey(1, 1), itemKey(1, 2), 'meta'], 'leftovers of other generations are removed')
})

t.test('worklist persistence: finished, dropped and replaced items leave the store', async (t) => {
  const h = await memory(t)
  const handler = createControlledHandler<string>()
  const worklist = await h.start(handler.handle)
  await worklist.replace(letters('abcd'), meta())
  ;(await handler.started(0)).finish('done')
  await handler.started(1)
  await worklist.drop((item) => item === 'c')
  const sub = h.db.sublevel('test')
  t.same(await sub.values().all(), ['b', 'd', JSON.stringify({ generation: 1, digest: 'digest-1', received_at: RECEIVED.toISOString(), done: 1, failed: 0, skipped: 0 })])
  await worklist.replace(['e'], meta('2'))
  await worklist.close()
  t.same(await sub.keys().all(), [itemKey(2, 0), 'meta'], 'the old generation is gone')
})

t.test('worklist: a list of 100 000 items replaces, drops and reloads whole, in order', async (t) => {
  const dir = t.testdir()
  const first = await onDisk(t, dir)
  const handler = createControlledHandler<string>()
  const worklist = await first.start(handler.handle)
  const items = Array.from({ length: 100_000 }, (_, i) => `item-${i}`)
  await worklist.replace(items, meta('big'))
  await handler.started(0)
  t.equal(worklist.status().queued, 99_999)
  t.equal(await worklist.drop((item) => item.endsWith('1')), 10_000)
  t.equal(worklist.status().items[0], 'item-2')
  await worklist.close()
  await first.db.close()
  const second = await onDisk(t, dir)
  const again = await second.start(createControlledHandler<string>().handle)
  const status = again.status()
  t.equal(status.queued + status.in_progress, 90_000, 'item-0 (in progress at close) plus the 89 999 left')
  t.equal(status.items.at(-1), 'item-99999')
})

t.test('worklist status: serialises with bigint items intact', async (t) => {
  const item: TrashItem = { locator: 'acbd18db4cc2f85cedef654fccc4a4d8+3', block_mtime: 1707249451308502672n }
  const text = serializeStatus(
    { received_at: RECEIVED.toISOString(), digest: 'd', queued: 1, in_progress: 0, done: 0, failed: 0, skipped: 0, items: [item] },
    serializeTrashList,
  )
  t.equal(
    text,
    `{"received_at":"${RECEIVED.toISOString()}","digest":"d","queued":1,"in_progress":0,"done":0,"failed":0,"skipped":0,` +
      `"items":[{"locator":"acbd18db4cc2f85cedef654fccc4a4d8+3","block_mtime":1707249451308502672}]}`,
  )
})

t.test('worklist: close() waits for handlers that take a while to stop, wakes idle() waiters, and refuses drop', async (t) => {
  let stopped = false
  const started: Array<() => void> = []
  const handle = (_item: string, { signal }: { signal: AbortSignal }): Promise<ItemOutcome> =>
    new Promise((_resolve, reject) => {
      started.shift()?.()
      // A handler that needs a turn of the event loop to stop after its abort.
      signal.addEventListener('abort', () => setImmediate(() => {
        stopped = true
        reject(signal.reason)
      }), { once: true })
    })
  const running = new Promise<void>((r) => started.push(r))
  const worklist = await (await memory(t)).start(handle)
  await worklist.replace(letters('ab'), meta())
  await running
  const idle = worklist.idle()
  await worklist.close()
  t.ok(stopped, 'close resolved only after the handler stopped')
  await idle
  t.pass('an idle() waiting before close is woken by it')
  await t.rejects(worklist.drop(() => true), { code: 'KEEP_INTERNAL' }, 'a closed worklist refuses drop')
})

t.test('worklist: status lists the queued items themselves, in order', async (t) => {
  const handler = createControlledHandler<string>()
  const worklist = await (await memory(t)).start(handler.handle)
  await worklist.replace(letters('abcd'), meta())
  await handler.started(0)
  // Array.from: tap's same/strictSame pass a sparse array of the right length (holes are skipped).
  t.strictSame(Array.from(worklist.status().items), letters('bcd'))
  await worklist.drop((i) => i === 'c')
  t.strictSame(Array.from(worklist.status().items), letters('bd'))
})

t.test('worklist: a throwing onOutcome hook is logged and the loop goes on; a resumed list is logged', async (t) => {
  const dir = t.testdir()
  const logs: Array<{ msg?: string; count?: number; digest?: string }> = []
  const first = await onDisk(t, dir)
  const handler = createControlledHandler<string>()
  const worklist = await first.start(handler.handle, {
    logger: captureLogger(logs),
    onOutcome: () => {
      throw new Error('metrics broke')
    },
  })
  await worklist.replace(letters('ab'), meta('hooked'))
  ;(await handler.started(0)).finish('done')
  await handler.started(1)
  t.ok(logs.some((l) => l.msg === 'onOutcome hook threw'), 'the hook error is logged')
  t.match(worklist.status(), { done: 1 }, 'the outcome still counts')
  await worklist.close()
  await first.db.close()
  const second = await onDisk(t, dir)
  const again = await second.start(createControlledHandler<string>().handle, { logger: captureLogger(logs) })
  t.match(logs.find((l) => l.msg === 'resuming list'), { count: 1, digest: 'hooked' }, 'a list of one item left is resumed and logged')
  const before = logs.filter((l) => l.msg === 'resuming list').length
  await again.replace([], meta('empty'))
  await again.close()
  await second.db.close()
  const third = await onDisk(t, dir)
  await third.start(createControlledHandler<string>().handle, { logger: captureLogger(logs) })
  t.equal(logs.filter((l) => l.msg === 'resuming list').length, before, 'an empty list is not announced as resumed')
})
