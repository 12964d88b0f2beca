import { readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { createReferenceSpill, type ReferencedBlock } from '../../datamanager/references.js'
import { createSpill } from '../../datamanager/spill.js'
import type { ParsedCollection } from '../../datamanager/collections.js'
import { arrayRefs, refList } from '../../datamanager/manifest.js'

// Spread over prefixes (and partitions); in the order of n up to 20.
const hashOf = (n: number): string => ((n * 197) % 4096).toString(16).padStart(3, '0') + n.toString(16).padStart(29, '0')

function coll(uuid: string, refs: number[], replication = 2, classes: string[] = ['default']): ParsedCollection {
  return { uuid, replication, classes, refs: arrayRefs(refs.map(hashOf), refs.map((r) => r + 1)) }
}

async function spilled(t: Test, collections: ParsedCollection[], bufferChars: number, partitions = 256): Promise<ReferencedBlock[]> {
  const spill = await createSpill(t.testdir({}))
  try {
    const refs = createReferenceSpill(spill.dir, { bufferChars, partitions })
    for (const c of collections) await refs.addCollection(c)
    await refs.finish()
    const out: ReferencedBlock[] = []
    for await (const batch of refs.blocks()) out.push(...batch)
    return out
  } finally {
    await spill.destroy()
  }
}

/** The same aggregation, done the obvious way in memory. */
function naive(collections: ParsedCollection[]): ReferencedBlock[] {
  const map = new Map<string, ReferencedBlock & { uuidList: string[] }>()
  for (const c of collections) {
    refList(c.refs).forEach(([hash, size]) => {
      let b = map.get(hash)
      if (b === undefined) {
        b = { hash, size, want: { replication: 0, classes: [], references: 0 }, collections: '', uuidList: [] }
        map.set(hash, b)
      }
      b.want = {
        replication: Math.max(b.want.replication, c.replication),
        classes: [...new Set([...b.want.classes, ...c.classes])].sort(),
        references: (b.want.references ?? 0) + 1,
      }
      if (!b.uuidList.includes(c.uuid)) b.uuidList.push(c.uuid)
    })
  }
  return [...map.values()]
    .sort((a, b) => (a.hash < b.hash ? -1 : 1))
    .map(({ uuidList, ...b }) => ({ ...b, collections: uuidList.join(' ') }))
}

t.test('references: lines spilled to partition files come back combined per hash, in hash order', async (t) => {
  const collections = [
    coll('c1', [5, 3, 5, 9], 1),
    coll('c2', [3, 7], 3, ['archive']),
    coll('c3', [9, 1], 2, ['default', 'hot']),
  ]
  const expected = [
    { hash: hashOf(1), size: 2, want: { replication: 2, classes: ['default', 'hot'], references: 1 }, collections: 'c3' },
    { hash: hashOf(3), size: 4, want: { replication: 3, classes: ['archive', 'default'], references: 2 }, collections: 'c1 c2' },
    { hash: hashOf(5), size: 6, want: { replication: 1, classes: ['default'], references: 2 }, collections: 'c1' },
    { hash: hashOf(7), size: 8, want: { replication: 3, classes: ['archive'], references: 1 }, collections: 'c2' },
    { hash: hashOf(9), size: 10, want: { replication: 2, classes: ['default', 'hot'], references: 2 }, collections: 'c1 c3' },
  ]
  for (const [bufferChars, partitions] of [[1, 1], [2, 16], [3, 256], [1000, 4096]] as const) {
    t.same(await spilled(t, collections, bufferChars, partitions), expected, `buffers of ${bufferChars} characters, ${partitions} partitions`)
  }
})

t.test('references: a collection split across buffer writes is listed once per block', async (t) => {
  const blocks = await spilled(t, [coll('c1', [1, 2, 1, 2, 1]), coll('c2', [1])], 1)
  t.same(blocks.map((b) => b.collections), ['c1 c2', 'c1'])
  t.same(blocks.map((b) => b.want.references), [4, 2])
})

t.test('references: any input, any buffer size, same result as aggregating in memory', async (t) => {
  const arbCollection = fc.record({
    uuid: fc.constantFrom('a', 'b', 'c', 'd'),
    replication: fc.integer({ min: 0, max: 4 }),
    classes: fc.uniqueArray(fc.constantFrom('default', 'hot', 'cold'), { minLength: 1 }).map((c) => [...c].sort()),
    refs: fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 12 }),
  })
  await fc.assert(
    fc.asyncProperty(fc.array(arbCollection, { maxLength: 8 }), fc.integer({ min: 1, max: 200 }), async (raw, bufferChars) => {
      // One collection uuid per record, as in real exports.
      const collections = raw.map((c, i) => coll(`${c.uuid}${i}`, c.refs, c.replication, c.classes))
      const got = await spilled(t, collections, bufferChars)
      if (!t.same(got, naive(collections), `${collections.length} collections, buffers of ${bufferChars}`)) throw new Error('differs')
    }),
    { numRuns: 40 },
  )
})

t.test('references: one collection with more references than the buffers hold is written out while it is added', async (t) => {
  const spill = await createSpill(t.testdir({}))
  t.teardown(() => spill.destroy())
  const refs = createReferenceSpill(spill.dir, { bufferChars: 100, partitions: 16 })
  const n = 1050
  await refs.addCollection(coll('huge', Array.from({ length: n }, (_, i) => i)))
  const written = (await readdir(spill.dir)).filter((f) => f.startsWith('refs-'))
  let bytes = 0
  for (const f of written) bytes += (await stat(path.join(spill.dir, f))).size
  t.ok(bytes > n * 40, `most lines on disk before finish (${bytes} bytes)`)
  await refs.finish()
  const out: ReferencedBlock[] = []
  for await (const batch of refs.blocks()) out.push(...batch)
  t.equal(out.length, n)
  t.ok(out.every((b) => b.collections === 'huge' && b.want.references === 1), 'each block listed once, with its collection')
})
