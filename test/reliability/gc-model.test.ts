import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { md5hex } from '../../shared/hash.js'
import { ADMIN_TOKEN, call } from '../helpers/cluster.js'
import { collection, settle, startDmCluster, writeCollections, HOUR, type DmCluster } from '../helpers/datamanager-cluster.js'
import { figure, progress, scale } from '../helpers/soak.js'

/**
 * GC safety, model-based: random sequences of client and operator actions
 * against a real in-process cluster (3 keepstores on directory volumes,
 * replication 2, TTL 1 h, trash lifetime 2 h, one injected clock), with
 * the datamanager run in-process and its lists carried out. After every
 * command: no referenced block is lost (each is readable somewhere, byte
 * for byte), and no block put or re-put less than the TTL ago was trashed
 * (the keepstore it was last put to still serves it).
 */

const TTL = HOUR
const BLOCKS = 3
const KEEPSTORES = 3
const data = (i: number): string => `gc-model block ${i}\n`
const locator = (i: number): string => `${md5hex(data(i))}+${Buffer.byteLength(data(i))}`
const collectionUuid = (i: number): string => `zzzzz-4zz18-${String(i).padStart(15, '0')}`
/** Always present, so a run never reads zero collections. */
const BASE = collection('zzzzz-4zz18-zzzzzzzzzzzzzzz', [])

interface Model {
  now: number
  /** Block → when and where it was last put (only blocks ever put). */
  puts: Map<number, { at: number; server: number }>
  referenced: Set<number>
}

interface Real {
  dm: DmCluster
  stats: { commands: number; runs: number }
}

type Cmd = fc.AsyncCommand<Model, Real>

async function readable(dm: DmCluster, server: number, i: number): Promise<boolean> {
  const res = await call(dm.keepstores[server]!.url, 'GET', `/${locator(i)}`)
  return res.status === 200 && res.text === data(i)
}

async function check(m: Model, r: Real): Promise<void> {
  for (const i of m.referenced) {
    let found = false
    for (let s = 0; s < KEEPSTORES && !found; s++) found = await readable(r.dm, s, i)
    if (!found) throw new Error(`lost: referenced block ${i} is readable nowhere`)
  }
  for (const [i, put] of m.puts) {
    if (m.now - put.at >= TTL) continue
    if (!(await readable(r.dm, put.server, i))) {
      throw new Error(`young trashed: block ${i}, put ${(m.now - put.at) / 60_000} min ago on keepstore ${put.server}, is gone there`)
    }
  }
}

function command(name: string, canRun: (m: Model) => boolean, act: (m: Model, r: Real) => Promise<void>): Cmd {
  return {
    check: canRun,
    async run(m, r) {
      r.stats.commands++
      await act(m, r)
      await check(m, r)
    },
    toString: () => name,
  }
}

const put = (i: number, server: number): Cmd =>
  command(`put(${i}→ks${server})`, () => true, async (m, r) => {
    const res = await call(r.dm.keepstores[server]!.url, 'PUT', `/${md5hex(data(i))}`, { body: data(i) })
    if (res.status !== 200) throw new Error(`PUT block ${i} to keepstore ${server}: ${res.status} ${res.text}`)
    m.puts.set(i, { at: m.now, server })
  })

// A client references a block while its signature is valid: put (or re-put) less than the TTL ago.
const reference = (i: number): Cmd =>
  command(
    `reference(${i})`,
    (m) => !m.referenced.has(i) && m.puts.has(i) && m.now - m.puts.get(i)!.at < TTL,
    async (m) => void m.referenced.add(i),
  )

const unreference = (i: number): Cmd => command(`unreference(${i})`, (m) => m.referenced.has(i), async (m) => void m.referenced.delete(i))

const datamanagerRun: Cmd = command('datamanager', () => true, async (m, r) => {
  const records = [BASE, ...[...m.referenced].sort().map((i) => collection(collectionUuid(i), [locator(i)]))]
  await writeCollections(r.dm.collectionsFile, records)
  // --force: unreferencing many blocks at once is this model's normal, not a truncated export.
  const result = await r.dm.run({ force: true })
  if (result.exitCode !== 0) throw new Error(`datamanager run: exit ${result.exitCode}: ${result.report?.refusals.map((x) => x.message).join('; ')}`)
  await settle(r.dm)
  r.stats.runs++
})

const untrash = (i: number): Cmd =>
  command(`untrash(${i})`, (m) => m.puts.has(i), async (_m, r) => {
    for (const ks of r.dm.keepstores) await call(ks.url, 'PUT', `/untrash/${locator(i)}`, { token: ADMIN_TOKEN })
  })

const emptyTrash: Cmd = command('empty-trash', () => true, async (_m, r) => {
  for (const ks of r.dm.keepstores) await ks.emptier.runOnce()
})

const advance = (ms: number): Cmd =>
  command(`advance(${ms / 60_000} min)`, () => true, async (m, r) => {
    m.now += ms
    r.dm.clock.now = m.now
  })

const restart = (server: number): Cmd =>
  command(`restart(ks${server})`, () => true, async (_m, r) => {
    await r.dm.restart(server)
  })

const putArb = fc.tuple(fc.nat(BLOCKS - 1), fc.nat(KEEPSTORES - 1)).map(([i, s]) => put(i, s))
const referenceArb = fc.nat(BLOCKS - 1).map(reference)
const advanceArb = fc.constantFrom(10 * 60_000, 50 * 60_000, TTL + 1000, 3 * HOUR).map(advance)
// fc.commands picks uniformly among these: the common actions are listed twice.
const commands = [
  putArb,
  putArb,
  referenceArb,
  referenceArb,
  fc.nat(BLOCKS - 1).map(unreference),
  fc.constant(datamanagerRun),
  fc.constant(datamanagerRun),
  fc.nat(BLOCKS - 1).map(untrash),
  fc.constant(emptyTrash),
  // Below the TTL, just past it, past the trash lifetime.
  advanceArb,
  advanceArb,
  fc.nat(KEEPSTORES - 1).map(restart),
]

/** A fresh cluster per sequence, under the test's directory; its teardowns run when the sequence ends. */
async function freshCluster(t: Test, n: number): Promise<{ dm: DmCluster; stop(): Promise<void> }> {
  const dir = path.join(t.testdirName, `seq-${n}`)
  await mkdir(dir, { recursive: true })
  const teardowns: Array<() => unknown> = []
  const shim = { testdir: () => dir, teardown: (fn: () => unknown) => void teardowns.push(fn) } as unknown as Test
  const dm = await startDmCluster(shim, {
    keepstores: KEEPSTORES,
    volumes: [{ driver: 'directory' }],
    cluster: { blobSigning: false, blobSigningTTL: '1h', blobTrashLifetime: '2h', defaultReplication: 2 },
  })
  return {
    dm,
    async stop() {
      for (const fn of teardowns.reverse()) await fn()
    },
  }
}

t.test('GC safety model: random puts, references, datamanager runs, untrash, empty trash, clock jumps and restarts never lose a referenced block or trash a young one', async (t) => {
  const sequences = scale('sequences', 20, 1000)
  // Every command is checked against the real cluster (fsyncs, a datamanager run now and then): short sequences in npm test.
  const maxCommands = scale('gc-commands', 16, 40)
  const stats = { commands: 0, runs: 0 }
  let n = 0
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands, size: 'max' }), async (cmds) => {
      const cluster = await freshCluster(t, n++)
      try {
        await fc.asyncModelRun(() => ({ model: { now: cluster.dm.clock.now, puts: new Map<number, { at: number; server: number }>(), referenced: new Set<number>() }, real: { dm: cluster.dm, stats } }), cmds)
      } finally {
        await cluster.stop()
        progress('gc-model', n, sequences)
      }
    }),
    { numRuns: sequences, endOnFailure: true },
  )
  t.ok(stats.runs > 0, `${stats.runs} datamanager runs carried out`)
  figure(t, 'gc-model', { sequences, commands: stats.commands, runs: stats.runs, lost: 0, young_trashed: 0 })
})
