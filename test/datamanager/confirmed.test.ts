import { readdir, readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { ParsedCollection } from '../../datamanager/collections.js'
import { createConfirmedTracker, type ConfirmedTracker } from '../../datamanager/confirmed.js'
import { arrayRefs } from '../../datamanager/manifest.js'
import type { ReferencedBlock } from '../../datamanager/references.js'
import { CONFIRMED_FILE } from '../../datamanager/run.js'
import { createSpill } from '../../datamanager/spill.js'
import { collection, putBlock, startDmCluster, writeCollections } from '../helpers/datamanager-cluster.js'

const hashOf = (n: number): string => n.toString(16).padStart(32, '0')

interface Coll {
  uuid: string
  replication: number
  classes: string[]
  blocks: number[]
}

interface Line {
  uuid: string
  replication_confirmed: number
  storage_classes_confirmed: string[]
}

let runs = 0

/** Feeds collections and blocks (held: block → class → replication held) through a tracker; returns the lines written. */
async function track(t: Test, colls: Coll[], held: Map<number, Map<string, number>>, chunkSize: number, before?: (c: ConfirmedTracker) => Promise<void>): Promise<Line[]> {
  const dir = path.join(t.testdirName, `run-${++runs}`)
  const spill = await createSpill(path.join(dir, 'spill'))
  t.teardown(() => spill.destroy())
  const tracker = createConfirmedTracker(await spill.open('confirmed'), { chunkSize })
  for (const c of colls) {
    const parsed: ParsedCollection = { uuid: c.uuid, replication: c.replication, classes: c.classes, refs: arrayRefs(c.blocks.map(hashOf), c.blocks.map(() => 3)) }
    await tracker.addCollection(parsed)
  }
  await tracker.flush()
  await before?.(tracker)
  tracker.startBlocks()
  const blocks = [...new Set(colls.flatMap((c) => c.blocks))].sort((a, b) => a - b)
  for (const b of blocks) {
    const users = colls.filter((c) => c.blocks.includes(b))
    const classes = [...new Set(users.flatMap((c) => c.classes))].sort()
    const reference: ReferencedBlock = {
      hash: hashOf(b),
      size: 3,
      want: { replication: Math.max(...users.map((c) => c.replication)), classes },
      collections: [...new Set(users.map((c) => c.uuid))].join(' '),
    }
    await tracker.addBlock(reference, { classes, copies: classes.map((cls) => held.get(b)?.get(cls) ?? 0) })
  }
  await tracker.flush()
  const file = path.join(dir, 'confirmed.jsonl')
  const written = await tracker.write(file)
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line)
  if (written.collections !== lines.length) throw new Error('write() miscounts the lines it wrote')
  return lines
}

/** keep-balance's GetConfirmedReplication, capped at the desired replication, done the obvious way (a uuid given twice: 0). */
function naive(colls: Coll[], held: Map<number, Map<string, number>>): Line[] {
  const byUuid = new Map<string, Coll>()
  for (const c of colls) byUuid.set(c.uuid, byUuid.has(c.uuid) ? { ...c, blocks: [] } : c)
  return [...byUuid.values()]
    .map((c) => {
      let n = c.blocks.length === 0 ? 0 : c.replication
      for (const b of c.blocks) for (const cls of c.classes) n = Math.min(n, held.get(b)?.get(cls) ?? 0)
      return { uuid: c.uuid, replication_confirmed: n, storage_classes_confirmed: n > 0 ? [...new Set(c.classes)].sort() : [] }
    })
    .sort((a, b) => (JSON.stringify(a.uuid) < JSON.stringify(b.uuid) ? -1 : 1))
}

t.test('confirmed: the minimum over a collection\'s blocks and classes, capped at its desired replication (keep-balance\'s GetConfirmedReplication)', async (t) => {
  const held = new Map([
    [1, new Map([['default', 2]])],
    [2, new Map([['default', 3], ['archive', 1]])],
    [3, new Map([['default', 1]])],
    [4, new Map<string, number>()],
  ])
  const colls: Coll[] = [
    { uuid: 'c-two', replication: 2, classes: ['default'], blocks: [1, 2] },
    { uuid: 'c-one', replication: 2, classes: ['default'], blocks: [1, 3] },
    { uuid: 'c-capped', replication: 2, classes: ['default'], blocks: [2] },
    { uuid: 'c-three', replication: 3, classes: ['default'], blocks: [2] },
    { uuid: 'c-lost', replication: 2, classes: ['default'], blocks: [1, 4] },
    { uuid: 'c-empty', replication: 2, classes: ['default'], blocks: [] },
    { uuid: 'c-archive', replication: 2, classes: ['archive', 'default'], blocks: [2] },
    { uuid: 'c-zero', replication: 0, classes: ['default'], blocks: [1] },
  ]
  const lines = await track(t, colls, held, 1000)
  const of = (uuid: string): [number, string[]] => {
    const line = lines.find((l) => l.uuid === uuid)!
    return [line.replication_confirmed, line.storage_classes_confirmed]
  }
  t.same(of('c-two'), [2, ['default']], 'every block held twice')
  t.same(of('c-one'), [1, ['default']], 'one block held once')
  t.same(of('c-capped'), [2, ['default']], 'three copies of a collection wanting two confirm two (keep-balance: no flapping)')
  t.same(of('c-three'), [3, ['default']])
  t.same(of('c-lost'), [0, []], 'a block held nowhere: 0, and no class')
  t.same(of('c-empty'), [0, []], 'no block at all: 0, as keep-balance')
  t.same(of('c-archive'), [1, ['archive', 'default']], 'the class held least counts')
  t.same(of('c-zero'), [0, []], 'desired 0 confirms 0')
  t.equal(lines.length, colls.length, 'one line per collection')
  t.same(lines.map((l) => l.uuid), [...lines.map((l) => l.uuid)].sort(), 'in uuid order')
})

t.test('confirmed: spilled in chunks of one collection or of many, the same lines as computed in memory (property)', async (t) => {
  const classArb = fc.subarray(['default', 'archive', 'hot'], { minLength: 1 })
  const collArb = fc.record({
    uuid: fc.constantFrom('a', 'b', 'c', 'd', 'e"quoted', 'zzzzz-4zz18-000000000000001'),
    replication: fc.integer({ min: 0, max: 4 }),
    classes: classArb,
    blocks: fc.uniqueArray(fc.integer({ min: 0, max: 8 }), { maxLength: 5 }),
  })
  const heldArb = fc.array(fc.dictionary(fc.constantFrom('default', 'archive', 'hot'), fc.integer({ min: 0, max: 4 })), { minLength: 9, maxLength: 9 })
  await fc.assert(
    fc.asyncProperty(fc.array(collArb, { maxLength: 8 }), heldArb, fc.constantFrom(1, 3, 1000), async (colls, heldList, chunkSize) => {
      const held = new Map(heldList.map((h, i) => [i, new Map(Object.entries(h))]))
      const lines = await track(t, colls, held, chunkSize)
      if (JSON.stringify(lines) !== JSON.stringify(naive(colls, held))) throw new Error(`chunk ${chunkSize}: ${JSON.stringify(lines)}`)
    }),
    { numRuns: 15 },
  )
})

t.test('confirmed: blocks of a balance pass that started over do not count, only the last pass\'s', async (t) => {
  const held = new Map([[1, new Map([['default', 2]])]])
  const colls: Coll[] = [{ uuid: 'c1', replication: 2, classes: ['default'], blocks: [1] }]
  const lines = await track(t, colls, held, 1, async (tracker) => {
    // A first pass over a truncated index saw the block nowhere, and spilled that.
    tracker.startBlocks()
    await tracker.addBlock({ hash: hashOf(1), size: 3, want: { replication: 2, classes: ['default'] }, collections: 'c1' }, { classes: ['default'], copies: [0] })
    await tracker.flush()
  })
  t.same(lines, [{ uuid: 'c1', replication_confirmed: 2, storage_classes_confirmed: ['default'] }])
})

t.test('confirmed: a committed run writes collections-confirmed.jsonl atomically; a dry run and a refused run leave it alone', async (t) => {
  const dm = await startDmCluster(t)
  const [u0, u1, u2] = dm.urls as [string, string, string]
  const twice = await putBlock(u0, 'held twice\n')
  await putBlock(u1, 'held twice\n')
  const once = await putBlock(u2, 'held once\n')
  const lost = 'acbd18db4cc2f85cedef654fccc4a4d8+3'
  const C = (n: number): string => `zzzzz-4zz18-${String(n).padStart(15, '0')}`
  await writeCollections(dm.collectionsFile, [
    collection(C(1), [twice]),
    collection(C(2), [twice, once]),
    collection(C(3), [twice, lost]),
    collection(C(4), [twice], { storage_classes_desired: ['archive'] }),
    collection(C(5), [twice], { replication_desired: 1 }),
  ])
  const file = path.join(dm.stateDir, CONFIRMED_FILE)
  const dry = await dm.run({ dryRun: true })
  t.equal(dry.report?.outcome, 'dry-run')
  await t.rejects(stat(file), { code: 'ENOENT' }, 'a dry run writes no confirmed file')

  const first = await dm.run()
  t.equal(first.report?.outcome, 'committed')
  t.same(first.report?.confirmed, { file, collections: 5 })
  const text = await readFile(file, 'utf8')
  t.same(
    text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line),
    [
      { uuid: C(1), replication_confirmed: 2, storage_classes_confirmed: ['default'] },
      { uuid: C(2), replication_confirmed: 1, storage_classes_confirmed: ['default'] },
      { uuid: C(3), replication_confirmed: 0, storage_classes_confirmed: [] },
      { uuid: C(4), replication_confirmed: 0, storage_classes_confirmed: [] },
      { uuid: C(5), replication_confirmed: 1, storage_classes_confirmed: ['default'] },
    ],
    'what the indexes showed, per collection',
  )
  t.same((await readdir(dm.stateDir)).filter((n) => n.includes('.tmp')), [], 'no temporary file left')

  await writeCollections(dm.collectionsFile, [collection(C(1), [twice]), '{"uuid": 1}'])
  const refused = await dm.run()
  t.equal(refused.report?.outcome, 'refused')
  t.equal(refused.report?.confirmed, undefined)
  t.equal(await readFile(file, 'utf8'), text, 'a refused run leaves the last committed run\'s file')
})
