import { utimesSync } from 'node:fs'
import t, { type Test } from 'tap'
import type { RefusalCode } from '../../datamanager/sanity.js'
import { md5hex } from '../../shared/hash.js'
import { listDigest } from '../../shared/worklist-items.js'
import { ADMIN_TOKEN, call } from '../helpers/cluster.js'
import { collection } from '../helpers/datamanager-cluster.js'
import { liveHashes, trashedCopies, volumeFiles } from '../helpers/block-files.js'
import {
  blockFile,
  drained,
  listStatus,
  putOn,
  startProcessCluster,
  type DmResult,
  type KeepstoreProcess,
  type ListStatus,
} from '../helpers/process-cluster.js'

// PROTOCOL §8 refusals, end to end: child keepstores on real directories,
// each behind a recording proxy (which can also cut an index), and the real
// bin/datamanager. Keepstore 3 serves keepstore 0's directory read-only
// through a symlink (started first, before 0 claims it): one device, two
// mounts. Only the duplicate-device test lists it in the datamanager's config.
const pc = await startProcessCluster(t, { keepstores: 4, proxies: true, sharesRootOf: { 3: 0 }, startFirst: [3] })
const [k0, k1, k2, k3] = pc.keepstores as [KeepstoreProcess, KeepstoreProcess, KeepstoreProcess, KeepstoreProcess]
const main = [k0, k1, k2]
const roots = main.map((k) => k.root)
const EMPTY = listDigest('[]')
const COLL = (n: number): string => `zzzzz-4zz18-${String(n).padStart(15, '0')}`
const ageBy = (file: string, seconds: number): void => {
  const s = Math.floor(Date.now() / 1000) - seconds
  utimesSync(file, s, s)
}

// Work an unrefused run would do: trash `garbage` (unreferenced, 2 h old
// with a 1 h TTL) and pull `lonely` (referenced, on its last rendezvous
// server only). `everywhere` keeps every index non-empty.
const everywhere = await Promise.all(main.map((k) => putOn(k, 'on every keepstore\n'))).then((l) => l[0]!)
const garbage = await putOn(k1, 'old garbage\n')
ageBy(blockFile(k1, garbage.slice(0, 32)), 7200)
const lonelyData = 'referenced, on one keepstore\n'
const lonelyOrder = pc.order(md5hex(lonelyData), main)
const lonely = await putOn(lonelyOrder[2]!, lonelyData)
const records = (n: number, first: string[] = [everywhere, lonely]): string =>
  Array.from({ length: n }, (_, i) => `${collection(COLL(i), i === 0 ? first : [everywhere])}\n`).join('')

interface Refusal {
  code: RefusalCode
  run: () => Promise<DmResult>
  /** Keepstores of the run's config that answer (and so get an empty trash list). */
  answering?: KeepstoreProcess[]
  /** Keepstores of the run's config that do not answer. */
  silent?: KeepstoreProcess[]
  arrange?: () => Promise<void>
  restore?: () => Promise<void>
}

/**
 * Plants a sentinel pull list (`[]`) and trash list (one item for a block
 * nobody holds) on every keepstore of the run, runs it, and checks PROTOCOL
 * §8's refusal: exit 1, the refusal code in the report, no PUT /pull, only
 * `[]` to /trash — received by every keepstore that answered — and not one
 * block file removed or trashed.
 */
async function expectRefusal(t: Test, r: Refusal): Promise<DmResult> {
  const answering = r.answering ?? main
  const silent = r.silent ?? []
  const listed = [...answering, ...silent]
  const sentinel = `[{"locator":"${md5hex('nobody holds this')}+17","block_mtime":1}]`
  const before = new Map<KeepstoreProcess, { pull: ListStatus; trash: ListStatus }>()
  for (const k of listed) {
    t.equal((await call(k.direct, 'PUT', '/pull', { token: ADMIN_TOKEN, body: '[]' })).status, 200)
    t.equal((await call(k.direct, 'PUT', '/trash', { token: ADMIN_TOKEN, body: sentinel })).status, 200)
  }
  await drained(listed, 'trash')
  for (const k of listed) before.set(k, { pull: await listStatus(k, 'pull'), trash: await listStatus(k, 'trash') })
  const files = volumeFiles(roots)
  const marks = listed.map((k) => k.proxy!.requests.length)
  await r.arrange?.()
  const result = await r.run()
  await r.restore?.()

  t.equal(result.code, 1, `exit 1 (refused); stderr: ${result.stderr}`)
  t.equal(result.report?.outcome, 'refused')
  t.same(result.report?.refusals.map((x) => x.code), [r.code], `the report names ${r.code}`)
  listed.forEach((k, i) => {
    const requests = k.proxy!.requests.slice(marks[i])
    t.same(requests.filter((q) => q.method === 'PUT' && q.path === '/pull'), [], `keepstore ${k.index}: no PUT /pull`)
    t.same(requests.filter((q) => q.method === 'PUT' && q.path === '/trash' && q.body !== '[]'), [], `keepstore ${k.index}: no non-empty trash list`)
  })
  for (const k of listed) {
    const pull = await listStatus(k, 'pull')
    const trash = await listStatus(k, 'trash')
    const was = before.get(k)!
    t.same([pull.received_at, pull.digest], [was.pull.received_at, was.pull.digest], `keepstore ${k.index}: pull list untouched`)
    if (answering.includes(k)) {
      t.equal(trash.digest, EMPTY, `keepstore ${k.index} answered and received an empty trash list`)
      t.same(trash.items, [])
      t.not(trash.received_at, was.trash.received_at, `keepstore ${k.index}: the empty list replaced the sentinel`)
    } else {
      t.same([trash.received_at, trash.digest], [was.trash.received_at, was.trash.digest], `keepstore ${k.index} (silent) received nothing`)
    }
  }
  t.same(volumeFiles(roots), files, 'not one block file removed or trashed')
  return result
}

t.test('datamanager e2e: an index that lacks its final empty line → refused, nothing pulled or trashed', (t) =>
  expectRefusal(t, {
    code: 'index-incomplete',
    arrange: async () => void (k1.proxy!.indexFault = 'cut'),
    restore: async () => void (k1.proxy!.indexFault = undefined),
    run: () => pc.datamanager({ name: 'cut', collections: records(10), keepstores: [0, 1, 2] }),
  }))

// A keepstore whose disk fails mid-listing stops the index without its final
// line (or, through a proxy, the connection breaks). A SIGSTOPped keepstore
// would instead hang the run until the client's 2-minute timeout, and chmod
// 000 does not stop root: the proxy sends half the body, then resets.
t.test('datamanager e2e: an index that fails after output began → refused, nothing pulled or trashed', (t) =>
  expectRefusal(t, {
    code: 'index-incomplete',
    arrange: async () => void (k1.proxy!.indexFault = 'reset'),
    restore: async () => void (k1.proxy!.indexFault = undefined),
    run: () => pc.datamanager({ name: 'reset', collections: records(10), keepstores: [0, 1, 2] }),
  }))

t.test('datamanager e2e: a keepstore that does not answer → refused, only empty trash lists to those that answered', async (t) => {
  await expectRefusal(t, {
    code: 'keepstore-unavailable',
    answering: [k0, k1],
    silent: [k2],
    arrange: async () => void t.equal(await k2.stop(), 0, 'keepstore 2 stopped cleanly'),
    restore: () => k2.start(),
    run: () => pc.datamanager({ name: 'down', collections: records(10), keepstores: [0, 1, 2] }),
  })
})

t.test('datamanager e2e: no collection read → refused', (t) =>
  expectRefusal(t, {
    code: 'no-collections',
    run: () => pc.datamanager({ name: 'empty', collections: '', keepstores: [0, 1, 2] }),
  }))

t.test('datamanager e2e: one malformed collection record (a truncated line) → refused', (t) =>
  expectRefusal(t, {
    code: 'malformed-collection',
    run: () =>
      pc.datamanager({
        name: 'malformed',
        collections: `${records(10)}{"uuid":"${COLL(10)}","manifest_text":". ${everywhere} 0:1:f\\n","replic\n`,
        keepstores: [0, 1, 2],
      }),
  }))

t.test('datamanager e2e: two mounts with one device_id (one directory, two keepstores) → refused', async (t) => {
  const mounts = await Promise.all([k0, k3].map(async (k) => (JSON.parse((await call(k.direct, 'GET', '/mounts', { token: ADMIN_TOKEN })).text) as Array<{ uuid: string; device_id: string }>)[0]!))
  t.not(mounts[0]!.uuid, mounts[1]!.uuid, 'two different mount uuids')
  t.equal(mounts[0]!.device_id, mounts[1]!.device_id, 'one device_id')
  await expectRefusal(t, {
    code: 'duplicate-device',
    answering: [k0, k1, k2, k3],
    run: () => pc.datamanager({ name: 'device', collections: records(10), keepstores: [0, 1, 2, 3] }),
  })
})

// Last: its committed runs pull and trash the shared fixture.
t.test('datamanager e2e: collections fell by more than 10 % → refused; exactly 10 % passes; --force overrides', async (t) => {
  const first = await pc.datamanager({ name: 'drop', collections: records(10), keepstores: [0, 1, 2] })
  t.equal(first.code, 0, `the baseline run commits; stderr: ${first.stderr}`)
  t.same(first.report?.refusals, [])
  await drained(main, 'pull')
  await drained(main, 'trash')
  t.ok(liveHashes(lonelyOrder[0]!.root).has(lonely.slice(0, 32)) && liveHashes(lonelyOrder[1]!.root).has(lonely.slice(0, 32)), 'the fixture was real work: lonely pulled to its two positions')
  t.equal(trashedCopies(k1.root, garbage.slice(0, 32)).length, 1, 'and the old garbage trashed')

  const nine = await pc.datamanager({ name: 'drop', collections: records(9), keepstores: [0, 1, 2] })
  t.equal(nine.code, 0, '10 → 9 collections (exactly 10 %) is not a refusal')

  const garbage2 = await putOn(k2, 'more old garbage\n')
  ageBy(blockFile(k2, garbage2.slice(0, 32)), 7200)
  const data2 = 'referenced later, on one keepstore\n'
  const order2 = pc.order(md5hex(data2), main)
  const lonely2 = await putOn(order2[2]!, data2)
  const eight = records(8, [everywhere, lonely, lonely2])
  await expectRefusal(t, {
    code: 'collections-dropped',
    run: () => pc.datamanager({ name: 'drop', collections: eight, keepstores: [0, 1, 2] }),
  })
  t.ok(liveHashes(k2.root).has(garbage2.slice(0, 32)), 'the new garbage is untouched')

  const forced = await pc.datamanager({ name: 'drop', collections: eight, keepstores: [0, 1, 2], args: ['--force'] })
  t.equal(forced.code, 0, '--force accepts the drop')
  t.equal(forced.report?.forced, true)
  await drained(main, 'pull')
  await drained(main, 'trash')
  t.equal(trashedCopies(k2.root, garbage2.slice(0, 32)).length, 1, 'the forced run trashed the new garbage')
  t.ok(liveHashes(order2[0]!.root).has(lonely2.slice(0, 32)) && liveHashes(order2[1]!.root).has(lonely2.slice(0, 32)), 'and pulled the new block to its positions')
})

// PROTOCOL §8: when the servers or mounts changed since the last run (a first
// run knows no layout), every server gets an empty trash list before any
// index is read, so no stale trash item runs while the new view is taken.
// "The set" includes each server's url: one reached at a new address is a change too.
t.test('datamanager e2e: a changed layout → every keepstore\'s trash list is cleared before any index is read', async (t) => {
  const clearedFirst = (result: DmResult, watched: KeepstoreProcess[], marks: number[]): void => {
    watched.forEach((k, i) => {
      const requests = k.proxy!.requests.slice(marks[i])
      const firstIndex = requests.findIndex((q) => q.method === 'GET' && /^\/mounts\/[^/]+\/blocks/.test(q.path))
      const firstClear = requests.findIndex((q) => q.method === 'PUT' && q.path === '/trash' && q.body === '[]')
      t.ok(firstIndex >= 0, `keepstore ${k.index}: its index was read`)
      t.ok(firstClear >= 0 && firstClear < firstIndex, `keepstore ${k.index}: the empty trash list came first (${requests.map((q) => `${q.method} ${q.path}`).join(', ')})`)
    })
    t.equal(result.report?.topologyChanged, true, 'the report says the layout changed')
  }
  let marks = main.map((k) => k.proxy!.requests.length)
  clearedFirst(await pc.datamanager({ name: 'layout', collections: '', keepstores: [0, 1, 2] }), main, marks)
  marks = main.map((k) => k.proxy!.requests.length)
  const moved = await pc.datamanager({ name: 'layout', collections: '', keepstores: [0, 1, 2], urls: { 0: k0.direct } })
  clearedFirst(moved, [k1, k2], marks.slice(1))
})
