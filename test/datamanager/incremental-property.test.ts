import fc from 'fast-check'
import t from 'tap'
import { md5hex } from '../../shared/hash.js'
import type { Report } from '../../datamanager/report.js'
import { T0 } from '../helpers/cluster-config.js'
import { modelMount } from '../helpers/model-keepstore.js'
import { lastList, modelSize, startModelCluster, type ModelCluster } from '../helpers/model-cluster.js'

// Blocks in five prefixes (the other 4091 stay empty), so a change leaves most prefixes as they were.
const PREFIXES = ['0a1', '3f0', '7c2', 'b44', 'fff']
const POOL = PREFIXES.flatMap((p) => [0, 1, 2, 3].map((n) => p + md5hex(`${p}/${n}`).slice(3)))
const MINUTE = 60_000

type Step =
  | { kind: 'add'; server: number; mount: number; block: number; ageMinutes: number }
  | { kind: 'delete'; server: number; mount: number; block: number }
  | { kind: 'touch'; server: number; mount: number; block: number }
  | { kind: 'clock'; minutes: number }
  | { kind: 'mount'; server: number; change: 'trash' | 'replication' | 'add' | 'remove' }
  | { kind: 'reference'; collection: number; block: number }
  | { kind: 'replication'; collection: number; replication: number }

const server = fc.integer({ min: 0, max: 2 })
const mount = fc.integer({ min: 0, max: 1 })
const block = fc.integer({ min: 0, max: POOL.length - 1 })
const mountStep = fc.record({ kind: fc.constant('mount' as const), server, change: fc.constantFrom('trash' as const, 'replication' as const, 'add' as const, 'remove' as const) })
const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('add' as const), server, mount, block, ageMinutes: fc.constantFrom(0, 30, 55, 65, 120) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('delete' as const), server, mount, block }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('touch' as const), server, mount, block }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('clock' as const), minutes: fc.integer({ min: 1, max: 70 }) }), weight: 1 },
  { arbitrary: mountStep, weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('reference' as const), collection: fc.integer({ min: 0, max: 2 }), block }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('replication' as const), collection: fc.integer({ min: 0, max: 2 }), replication: fc.integer({ min: 1, max: 3 }) }), weight: 1 },
)

interface World {
  dm: ModelCluster
  /** Referenced pool indexes and desired replication, per collection. */
  collections: Array<{ blocks: Set<number>; replication: number }>
}

function apply(w: World, s: Step): void {
  const ks = w.dm.keepstores
  const now = BigInt(w.dm.clock.now) * 1_000_000n
  const mountOf = (si: number, mi: number): ReturnType<typeof modelMount> | undefined => ks[si]!.mounts[mi % ks[si]!.mounts.length]
  switch (s.kind) {
    case 'add': {
      const h = POOL[s.block]!
      mountOf(s.server, s.mount)?.blocks.set(h, { size: modelSize(h), mtime: now - BigInt(s.ageMinutes * MINUTE) * 1_000_000n - BigInt(s.block) })
      break
    }
    case 'delete':
      mountOf(s.server, s.mount)?.blocks.delete(POOL[s.block]!)
      break
    case 'touch': {
      const m = mountOf(s.server, s.mount)
      const held = m?.blocks.get(POOL[s.block]!)
      if (held !== undefined) held.mtime = now
      break
    }
    case 'clock':
      w.dm.clock.now += s.minutes * MINUTE
      break
    case 'mount': {
      const mounts = ks[s.server]!.mounts
      if (s.change === 'trash') mounts[0]!.allowTrash = !mounts[0]!.allowTrash
      else if (s.change === 'replication') mounts[0]!.replication = 3 - mounts[0]!.replication
      else if (s.change === 'remove' && mounts.length > 1) mounts.pop()
      else if (s.change === 'add' && mounts.length < 2) mounts.push(modelMount(`zzzzz-nyw5e-${String(s.server).padStart(7, '0')}${'1'.padStart(8, '0')}`))
      break
    }
    case 'reference': {
      const refs = w.collections[s.collection]!.blocks
      if (refs.has(s.block)) refs.delete(s.block)
      else refs.add(s.block)
      break
    }
    case 'replication':
      w.collections[s.collection]!.replication = s.replication
      break
  }
}

async function writeCollections(w: World): Promise<void> {
  await w.dm.writeCollections(
    w.collections.map((c, i) => ({ uuid: `zzzzz-4zz18-${String(i).padStart(15, '0')}`, hashes: [...c.blocks].sort((a, b) => a - b).map((b) => POOL[b]!), replication: c.replication })),
  )
}

/** What a run decided: categories, items decided and deferred past the caps, lost blocks. */
function decided(report: Report | undefined): object {
  if (report === undefined) return {}
  const work = (w: Report['pulls']): object => ({ decided: w.decided, deferred: w.deferred, bytes: w.decidedBytes })
  return { categories: report.categories, pulls: work(report.pulls), trashes: work(report.trashes), lost: report.lost.blocks, referenced: report.referencedBlocks }
}

/**
 * What a full read decides now: the lists a dry run with --full would send, and its categories. It reads the
 * collections and decides every prefix in worker threads (the runs it is compared with do both on the main
 * thread), so the property also holds the threaded paths to the main thread's decisions.
 */
async function fullDecision(dm: ModelCluster): Promise<string> {
  const result = await dm.run({ dryRun: true, full: true, force: true, parallelLines: 0, collectionsWorkerBytes: 0 })
  const lists = await Promise.all(dm.keepstores.map((_, i) => dm.dryRunLists(i)))
  return JSON.stringify({ exit: result.exitCode, lists, ...decided(result.report) })
}

const seen = { runs: 0, reusedPrefixes: 0, reread: 0, incrementalMounts: 0, fullMounts: 0, collectionsReused: 0 }

t.test('incremental: after any adds, deletes, touches, clock, mount and collection changes, an incremental run decides exactly what a full read decides', async (t) => {
  // Three rounds of changes, each followed by time passing (replicas cross the 1 h TTL) and a comparison; the
  // second always changes a mount (servers or mounts changed: every mount read in full), so the third starts
  // from a state a full read left.
  const minutes = fc.integer({ min: 10, max: 70 })
  const rounds = fc.tuple(fc.array(step, { maxLength: 5 }), minutes, fc.array(step, { maxLength: 4 }), mountStep, minutes, fc.array(step, { maxLength: 5 }), minutes)
  await fc.assert(
    fc.asyncProperty(rounds, async ([first, m1, second, mountChange, m2, third, m3]) => {
      const dm = await startModelCluster(t, [2, 1, 1], { pullLimit: 2, trashLimit: 2 })
      dm.clock.now = T0
      // A start with every kind of block: on one, two or three servers, a quarter unreferenced, ages spread
      // across the 1 h TTL so that time passing moves some past it.
      const referenced = POOL.map((_, i) => i).filter((i) => i % 4 !== 3)
      const w: World = { dm, collections: [0, 1, 2].map((c) => ({ blocks: new Set(referenced.filter((i) => i % 3 === c)), replication: 2 })) }
      POOL.forEach((h, i) => {
        for (const k of dm.keepstores.slice(0, 1 + (i % 3))) k.mounts[i % k.mounts.length]!.blocks.set(h, { size: modelSize(h), mtime: BigInt(T0 - ((i * 7) % 130) * MINUTE) * 1_000_000n })
      })
      await writeCollections(w)
      if ((await dm.run({ force: true })).exitCode !== 0) throw new Error('the first run did not commit')
      const clock = (m: number): Step => ({ kind: 'clock', minutes: m })
      for (const round of [[...first, clock(m1)], [...second, mountChange, clock(m2)], [...third, clock(m3)]]) {
        for (const s of round) apply(w, s)
        await writeCollections(w)
        const expected = await fullDecision(dm)
        const since = dm.keepstores.map((k) => k.lists.length)
        const run = await dm.run({ force: true })
        const lists = dm.keepstores.map((k, i) => ({ pull: lastList(k, '/pull', since[i]) ?? '', trash: lastList(k, '/trash', since[i]) ?? '' }))
        const got = JSON.stringify({ exit: run.exitCode, lists, ...decided(run.report) })
        if (got !== expected) throw new Error(`incremental run differs from a full read after ${JSON.stringify(round)}:\n${got}\n${expected}`)
        const inc = run.report!.incremental
        seen.runs++
        seen.reusedPrefixes += inc.prefixesReused
        seen.reread += inc.prefixesReread
        seen.incrementalMounts += inc.incrementalMounts
        seen.fullMounts += inc.fullMounts
        if (inc.collections === 'reused') seen.collectionsReused++
      }
    }),
    { numRuns: 4, endOnFailure: true },
  )
  // The property only proves something if the incremental paths actually ran.
  t.ok(seen.reusedPrefixes > 0, `decisions reused (${seen.reusedPrefixes} prefixes over ${seen.runs} runs)`)
  t.ok(seen.reread > 0, `prefixes read again (${seen.reread})`)
  t.ok(seen.incrementalMounts > 0 && seen.fullMounts > 0, `mounts read incrementally (${seen.incrementalMounts}) and in full after a mount change (${seen.fullMounts})`)
  t.ok(seen.collectionsReused > 0, `collections reused (${seen.collectionsReused} runs)`)
})
