import t from 'tap'
import type { BlockState } from '../../datamanager/balance.js'
import { mergePrefix, type MountGroup } from '../../datamanager/merge.js'
import { PrefixRefs } from '../../datamanager/references.js'
import type { IndexEntry } from '../../shared/index-format.js'

const h = (n: number): string => n.toString(16).padStart(32, '0')

function mount(server: string, name: string, hashes: number[]): MountGroup {
  const entries: IndexEntry[] = hashes.map((n) => ({ hash: h(n), size: n, mtime: BigInt(n) * 10n }))
  return { server, mount: name, entries }
}

/** References of blocks `hashes` (size n, replication 2, collection c<n>), in no particular order. */
function refs(hashes: number[]): PrefixRefs {
  return new PrefixRefs(new Map(hashes.map((n) => [h(n), `${h(n)}\t${n}\t2\t1\t["default"]\tc${n}\n`])))
}

t.test('merge: each hash once with every mount holding it and its reference, in hash order, then the referenced blocks no mount holds', async (t) => {
  const seen: Array<[string, string[], string | undefined]> = []
  const blocks = mergePrefix([mount('s1', 'm1', [1, 3, 5, 8]), mount('s2', 'm2', [3, 4, 8]), mount('s2', 'm3', [])], refs([9, 3, 8, 2]), (block, reference) => {
    seen.push([block.hash, block.replicas.map((r) => `${r.server}/${r.mount}@${r.mtime}`), reference?.collections])
  })
  t.same(seen, [
    [h(1), ['s1/m1@10'], undefined],
    [h(3), ['s1/m1@30', 's2/m2@30'], 'c3'],
    [h(4), ['s2/m2@40'], undefined],
    [h(5), ['s1/m1@50'], undefined],
    [h(8), ['s1/m1@80', 's2/m2@80'], 'c8'],
    [h(2), [], 'c2'],
    [h(9), [], 'c9'],
  ])
  t.equal(blocks, 7)
})

t.test('merge: the block carries the index size and the reference want', async (t) => {
  const blocks: BlockState[] = []
  mergePrefix([mount('s', 'm', [7])], refs([7]), (b) => void blocks.push(b))
  t.equal(blocks[0]?.size, 7)
  t.same(blocks[0]?.want, { replication: 2, classes: ['default'], references: 1 })
})

t.test('merge: no mounts and no references visit nothing', async (t) => {
  t.equal(
    mergePrefix([], undefined, () => t.fail('visited')),
    0,
  )
})
