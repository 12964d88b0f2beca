/**
 * `npm run bench:datamanager`: how the datamanager scales, and what
 * incremental runs save. Three fake keepstores (child processes,
 * bench/fake-keepstore.ts) each hold every block (3 replicas); a generated
 * collections file references 90 % of them (80 % want 3 copies, 10 % want 2:
 * over-replicated; the rest is garbage); `bin/datamanager --once` runs as a
 * child process against them, sending its (capped) lists to the fakes.
 *
 * 1. `BENCH_DM_BLOCKS` [10000000] blocks (0 skips it): a first run (everything read in
 *    full), a second run over the unchanged cluster, then a run after
 *    `BENCH_DM_CHANGE` [0.01] of the blocks changed (a third deleted, a third
 *    touched, a third joined by a new block, on every replica).
 * 2. `BENCH_DM_BIG` [100000000] blocks (0 skips it): a first run, for peak
 *    RSS and lines/s at scale.
 *
 * Prints, per run, wall and CPU seconds, index bytes read, prefixes read
 * again and reused, lines/s and peak RSS (VmHWM), then the verdicts against
 * the targets; writes `bench/results/datamanager-<time>.json`.
 * `DM_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"` profiles the datamanager child;
 * `BENCH_DM_BASELINE=<another build>/dist/bin/datamanager.js` adds that build's first run on the same cluster;
 * `BENCH_TMP` [os.tmpdir()] is where data goes (the 100 M case needs ~45 GB at its peak).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, statfs, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { blockHash, blockSize, PATCH_UNIT } from './fake-keepstore.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const FAKE = path.join(here, 'fake-keepstore.js')
const DATAMANAGER = path.join(here, '../bin/datamanager.js')
const RESULTS = path.join(here, '../../bench/results')
const TOKEN = 'bench-admin-token-0123456789abcdefghijklmnop'
const PER_COLLECTION = 100
const GiB = 1024 ** 3

interface RunFigures {
  name: string
  blocks: number
  indexLines: number
  exitCode: number | null
  wallSeconds: number
  cpuSeconds: number
  peakRssMiB: number
  indexBytes: number
  prefixesReread: number
  prefixesReused: number
  collections: string
  timings: { collectionsMs: number; balanceMs: number; commitMs: number }
  /** Why mounts were read in full (distinct reasons). */
  fullReasons: string[]
}

/** A permutation of 0..n-1 (multiplication by a prime coprime with n), so references arrive in no particular hash order. */
function permuted(j: number, n: number): number {
  const P = 2_147_483_647 % n === 0 ? 1_000_000_007 : 2_147_483_647
  return Number((BigInt(j) * BigInt(P)) % BigInt(n))
}

async function writeCollections(file: string, n: number): Promise<void> {
  const out = createWriteStream(file)
  let locators: string[] = []
  let collection = 0
  const flush = async (): Promise<void> => {
    const replication = collection % 9 === 8 ? 2 : 3
    const uuid = `zzzzz-4zz18-${String(collection++).padStart(15, '0')}`
    const manifest = `. ${locators.join(' ')} 0:${locators.length}:file.bin\n`
    const line = `${JSON.stringify({ uuid, manifest_text: manifest, replication_desired: replication })}\n`
    locators = []
    if (!out.write(line)) await new Promise<void>((resolve) => out.once('drain', () => resolve()))
  }
  for (let j = 0; j < n; j++) {
    const i = permuted(j, n)
    if (i % 10 === 0) continue
    locators.push(`${blockHash(i, n)}+${blockSize(i)}`)
    if (locators.length === PER_COLLECTION) await flush()
  }
  if (locators.length > 0) await flush()
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())))
}

interface Fake {
  child: ChildProcess
  url: string
}

async function startFake(n: number, mount: string, offset: number, dir: string, shared?: string): Promise<Fake> {
  const child = spawn(process.execPath, [FAKE, String(n), mount, String(offset), dir, ...(shared === undefined ? [] : [shared])], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })
  for await (const line of lines) return { child, url: `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}` }
  throw new Error('fake keepstore exited before listening')
}

/** VmHWM (KiB) and utime + stime (s) of a process, or the last values once it is gone. */
async function sample(pid: number, last: { hwm: number; cpu: number }): Promise<{ hwm: number; cpu: number }> {
  try {
    const [status, stat] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/stat`, 'utf8')])
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    return { hwm: Math.max(last.hwm, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0)), cpu: Math.max(last.cpu, ticks / 100) }
  } catch {
    return last
  }
}

interface Cluster {
  dir: string
  config: string
  blocks: number
  fakes: Fake[]
}

/**
 * `shared`: the three fakes serve one index file (fakes 1 and 2 add their mtime offset as they serve it),
 * a third of the disk: the 100 M case. Such a cluster takes no `POST /bench/change`.
 */
async function startCluster(root: string, n: number, shared = false): Promise<Cluster> {
  const dir = await mkdtemp(path.join(root, `dm-bench-${n}-`))
  process.stderr.write(`${n} blocks: generating collections and the fake keepstores' indexes${shared ? ' (one index file, served by all three)' : ''}…\n`)
  const mountOf = (k: number): string => `zzzzz-nyw5e-00000000000000${k}`
  const fake = (k: number): Promise<Fake> => startFake(n, mountOf(k), k * PATCH_UNIT, dir, shared && k > 0 ? path.join(dir, `${mountOf(0)}.0.idx`) : undefined)
  const startFakes = async (): Promise<Fake[]> => {
    if (!shared) return Promise.all([0, 1, 2].map(fake))
    const first = await fake(0) // writes the file the other two serve
    return [first, ...(await Promise.all([fake(1), fake(2)]))]
  }
  const [, fakes] = await Promise.all([writeCollections(path.join(dir, 'collections.jsonl'), n), startFakes()])
  const config = {
    cluster: { id: 'zzzzz', systemRootToken: TOKEN, blobSigning: false, blobSigningTTL: '1h', defaultReplication: 2 },
    keepstores: fakes.map((f, k) => ({ uuid: `zzzzz-bi6l4-00000000000000${k}`, url: f.url, volumes: [{ uuid: `zzzzz-nyw5e-00000000000000${k}`, driver: 'memory' }] })),
    datamanager: { collections: 'collections.jsonl', stateDir: 'state', runTimeout: '24h' },
  }
  const file = path.join(dir, 'cluster.json')
  await writeFile(file, JSON.stringify(config))
  return { dir, config: file, blocks: n, fakes }
}

/** A datamanager run; `program` and `state` let the baseline build run against the same cluster with its own state. */
async function runDatamanager(cluster: Cluster, name: string, program = DATAMANAGER, state = 'state'): Promise<RunFigures> {
  process.stderr.write(`${cluster.blocks} blocks: ${name}…\n`)
  const nodeArgs = (process.env.DM_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')
  let config = cluster.config
  if (state !== 'state') {
    const doc = JSON.parse(await readFile(cluster.config, 'utf8')) as { datamanager: Record<string, unknown> }
    doc.datamanager.stateDir = state
    config = path.join(cluster.dir, `${state}.json`)
    await writeFile(config, JSON.stringify(doc))
  }
  const started = performance.now()
  const child = spawn(process.execPath, [...nodeArgs, program, '--config', config, '--once', '--log-level', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'] })
  let last = { hwm: 0, cpu: 0 }
  const timer = setInterval(() => {
    void sample(child.pid!, last).then((v) => (last = v))
  }, 100)
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  clearInterval(timer)
  const wallSeconds = (performance.now() - started) / 1000
  const report = JSON.parse(await readFile(path.join(cluster.dir, state, 'report.json'), 'utf8')) as {
    indexLines: number
    blocks: number
    timings: RunFigures['timings']
    // A baseline build reports no incremental section.
    incremental?: { indexBytes: number; prefixesReread: number; prefixesReused: number; collections: string }
    servers: Array<{ mounts: Array<{ read?: string; fullReason?: string }> }>
  }
  return {
    name,
    blocks: report.blocks,
    indexLines: report.indexLines,
    exitCode,
    wallSeconds,
    cpuSeconds: last.cpu,
    peakRssMiB: last.hwm / 1024,
    indexBytes: report.incremental?.indexBytes ?? 0,
    prefixesReread: report.incremental?.prefixesReread ?? 0,
    prefixesReused: report.incremental?.prefixesReused ?? 0,
    collections: report.incremental?.collections ?? '-',
    timings: report.timings,
    fullReasons: [...new Set(report.servers.flatMap((srv) => srv.mounts.map((m) => (m.read === 'full' ? (m.fullReason ?? '') : '')).filter((r) => r !== '')))],
  }
}

async function stopCluster(cluster: Cluster): Promise<void> {
  for (const f of cluster.fakes) f.child.kill('SIGTERM')
  await Promise.all(cluster.fakes.map((f) => new Promise((resolve) => (f.child.exitCode !== null ? resolve(null) : f.child.once('exit', resolve)))))
  await rm(cluster.dir, { recursive: true, force: true })
}

const env = (name: string, fallback: number): number => (process.env[name] === undefined ? fallback : Number(process.env[name]))
const blocks = env('BENCH_DM_BLOCKS', 10_000_000)
const change = env('BENCH_DM_CHANGE', 0.01)
const big = env('BENCH_DM_BIG', 100_000_000)
const root = process.env.BENCH_TMP ?? os.tmpdir()
/** Another build's bin/datamanager.js (e.g. of the commit before a change): its first run on the same cluster, for comparison. */
const baseline = process.env.BENCH_DM_BASELINE
const fs = await statfs(root)
const conditions = {
  cpus: os.cpus().length,
  loadAverageBefore: os.loadavg().map((l) => Number(l.toFixed(2))),
  memTotalGiB: Number((os.totalmem() / GiB).toFixed(1)),
  diskFreeGiB: Number(((fs.bavail * fs.bsize) / GiB).toFixed(1)),
  node: process.version,
}
process.stderr.write(`conditions: ${JSON.stringify(conditions)}\n`)

const runs: RunFigures[] = []
if (blocks > 0) {
  const cluster = await startCluster(root, blocks)
  try {
    runs.push(await runDatamanager(cluster, 'first run (full)'))
    if (baseline !== undefined) runs.push(await runDatamanager(cluster, 'baseline build, first run', baseline, 'state-baseline'))
    runs.push(await runDatamanager(cluster, 'second run, unchanged'))
    process.stderr.write(`${blocks} blocks: changing ${change * 100} % of the blocks on every fake…\n`)
    await Promise.all(cluster.fakes.map((f) => fetch(`${f.url}/bench/change?fraction=${change}&seed=1`, { method: 'POST' }).then((r) => r.text())))
    runs.push(await runDatamanager(cluster, `after ${change * 100} % changed`))
  } finally {
    await stopCluster(cluster)
  }
}
if (big > 0) {
  const bigCluster = await startCluster(root, big, true)
  try {
    runs.push(await runDatamanager(bigCluster, 'first run (full), big'))
  } finally {
    await stopCluster(bigCluster)
  }
}
const loadAverageAfter = os.loadavg().map((l) => Number(l.toFixed(2)))

const fmt = (n: number, d = 1): string => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
const header = ['run', 'blocks', 'index lines', 'exit', 'wall s', 'CPU s', 'lines/s (wall)', 'index MB read', 'prefixes reread', 'reused', 'collections', 'peak RSS MiB']
const rows = runs.map((r) => [
  r.name,
  fmt(r.blocks, 0),
  fmt(r.indexLines, 0),
  String(r.exitCode),
  fmt(r.wallSeconds),
  fmt(r.cpuSeconds),
  fmt(r.indexLines / r.wallSeconds, 0),
  fmt(r.indexBytes / 1e6),
  fmt(r.prefixesReread, 0),
  fmt(r.prefixesReused, 0),
  r.collections,
  fmt(r.peakRssMiB, 0),
])
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
const print = (r: string[]): void => void process.stdout.write(`${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}\n`)
process.stdout.write('\n')
print(header)
for (const r of rows) print(r)
for (const r of runs) if (r.fullReasons.length > 0) process.stdout.write(`${r.name}: read in full because ${r.fullReasons.join('; ')}\n`)

const mine = runs.filter((r) => !r.name.startsWith('baseline'))
const bigRun = mine.find((r) => r.name.endsWith(', big'))
const baselineRun = runs.find((r) => r.name.startsWith('baseline'))
const verdicts: Array<[string, string, boolean]> = []
if (blocks > 0) {
  const [first, second, changed] = mine as [RunFigures, RunFigures, RunFigures]
  verdicts.push(
    [`second run reads < 2 % of the index bytes`, `${fmt((100 * second.indexBytes) / first.indexBytes, 3)} %`, second.indexBytes < 0.02 * first.indexBytes],
    [`second run ≥ 5× faster than the first (wall)`, `${fmt(first.wallSeconds / second.wallSeconds)}× (CPU ${fmt(first.cpuSeconds / second.cpuSeconds)}×)`, first.wallSeconds / second.wallSeconds >= 5],
    [`first run ≥ 400 k index lines/s end to end`, `${fmt(first.indexLines / first.wallSeconds / 1000)} k/s (${fmt(first.indexLines / first.cpuSeconds / 1000)} k per CPU-second)`, first.indexLines / first.wallSeconds >= 400_000],
    [`after ${change * 100} % changed`, `${fmt(changed.indexBytes / 1e6)} MB read (${fmt((100 * changed.indexBytes) / first.indexBytes)} % of a full read), ${fmt(changed.wallSeconds)} s`, true],
  )
  if (baselineRun !== undefined) {
    verdicts.push([`first run vs the baseline build (same cluster, same conditions)`, `${fmt(baselineRun.wallSeconds / first.wallSeconds, 2)}× wall, ${fmt(baselineRun.cpuSeconds / first.cpuSeconds, 2)}× CPU`, true])
  }
}
if (bigRun !== undefined) {
  verdicts.push([`${fmt(bigRun.blocks, 0)} blocks × 3: peak RSS < 1 GiB`, `${fmt(bigRun.peakRssMiB, 0)} MiB, ${fmt(bigRun.indexLines / bigRun.wallSeconds / 1000)} k lines/s`, bigRun.peakRssMiB < 1024])
}
process.stdout.write('\n')
for (const [name, value, pass] of verdicts) process.stdout.write(`${pass ? 'PASS' : 'FAIL'}  ${name}: ${value}\n`)
process.stdout.write(`conditions: ${conditions.cpus} CPUs shared with other work, load average ${conditions.loadAverageBefore.join(' ')} before, ${loadAverageAfter.join(' ')} after; ${conditions.node}\n`)
await mkdir(RESULTS, { recursive: true })
const out = path.join(RESULTS, `datamanager-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
await writeFile(out, `${JSON.stringify({ conditions: { ...conditions, loadAverageAfter }, blocks, change, big, runs, verdicts }, null, 2)}\n`)
process.stdout.write(`results: ${out}\n`)
