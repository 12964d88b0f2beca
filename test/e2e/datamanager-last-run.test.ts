import t from 'tap'
import { md5hex } from '../../shared/hash.js'
import { liveHashes, trashedCopies } from '../helpers/block-files.js'
import { ageBy, refusalFixture } from '../helpers/refusal-fixture.js'
import { blockFile, drained, putOn, startProcessCluster, type DmResult, type KeepstoreProcess } from '../helpers/process-cluster.js'

// PROTOCOL §8 rules that compare with the last run (a drop of collections,
// a changed layout), end to end: three child keepstores on real directories
// behind recording proxies, and the real bin/datamanager.
const pc = await startProcessCluster(t, { keepstores: 3, proxies: true })
const main = pc.keepstores
const [k0, k1, k2] = main as [KeepstoreProcess, KeepstoreProcess, KeepstoreProcess]
const { garbage, lonely, lonelyOrder, everywhere, records, expectRefusal } = await refusalFixture(pc, main)

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

// Last: its committed runs pull and trash the fixture.
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
