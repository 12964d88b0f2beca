/**
 * `npm run bench`: the keepstore against a bare-Node baseline in one run, same
 * load, side by side (see bench/README.md). Environment knobs:
 *   BENCH_SECONDS (10), BENCH_MAX_BYTES (2GiB)  per phase, whichever is reached first
 *   BENCH_ROUNDS (4)            each phase in this many slices, alternating the servers
 *   BENCH_REPEAT (3)            throughput runs; ratios are the median of the runs
 *   BENCH_CASES (4KiB,64MiB)    a subset of the block sizes
 *   BENCH_WARMUP_SECONDS (2)    unmeasured warm-up per case and server
 *   BENCH_INDEX_BLOCKS (100000) BENCH_MEMORY_PUTS (32)
 *   BENCH_ONLY=throughput,memory,index   a subset
 *   BENCH_CPU_PROF=1            `--cpu-prof` the keepstore of the throughput run
 *   BENCH_LOG_LEVEL (info)      the keepstore's log level (logs go to a file)
 *   BENCH_BASELINE_GET_MD5=0    baseline GET without hashing
 *   BENCH_TMP (os.tmpdir())     BENCH_KEEP_TMP=1 keeps the data afterwards
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Agent } from 'undici'
import { parseSize } from '../shared/duration.js'
import { runMain } from '../shared/cli.js'
import { KiB, MiB } from './blocks.js'
import { ADMIN_TOKEN, freePorts, killAll, keepstoreUuid, startBaselineChild, startKeepstoreChild, writeClusterConfig, type ChildServer } from './children.js'
import { compareIndexWithFind, populateVolume, type IndexBenchResult } from './index-bench.js'
import { createLoadAgent } from './load.js'
import { measurePutMemory, type MemoryResult } from './memory-bench.js'
import { renderReport, verdicts } from './report.js'
import { runThroughput, warmUp, type LoadCase, type PhaseRecord, type Target } from './throughput.js'

const RESULTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results')

const env = process.env
const settings = {
  seconds: Number(env.BENCH_SECONDS ?? 10),
  maxBytes: parseSize(env.BENCH_MAX_BYTES ?? '2GiB', 'BENCH_MAX_BYTES'),
  rounds: Number(env.BENCH_ROUNDS ?? 4),
  repeat: Number(env.BENCH_REPEAT ?? 3),
  cases: new Set((env.BENCH_CASES ?? '4KiB,64MiB').split(',').map((s) => s.trim())),
  warmupSeconds: Number(env.BENCH_WARMUP_SECONDS ?? 2),
  indexBlocks: Number(env.BENCH_INDEX_BLOCKS ?? 100_000),
  memoryPuts: Number(env.BENCH_MEMORY_PUTS ?? 32),
  only: new Set((env.BENCH_ONLY ?? 'throughput,memory,index').split(',').map((s) => s.trim())),
  cpuProfile: env.BENCH_CPU_PROF === '1',
  logLevel: env.BENCH_LOG_LEVEL ?? 'info',
  baselineGetMd5: env.BENCH_BASELINE_GET_MD5 !== '0',
  blobSigning: true,
}

const CASES: LoadCase[] = [
  { label: '4 KiB', size: 4 * KiB, concurrency: 16 },
  { label: '64 MiB', size: 64 * MiB, concurrency: 2 },
]

const say = (s: string): void => void process.stderr.write(`${s}\n`)

/** One keepstore child on a fresh directory volume under `dir`; `populate` runs before it starts. */
async function launchKeepstore(dir: string, options: { cpuProfDir?: string; populate?: (root: string) => void } = {}): Promise<ChildServer> {
  const [port] = await freePorts(1)
  const root = path.join(dir, 'volume')
  mkdirSync(root, { recursive: true })
  options.populate?.(root)
  const config = writeClusterConfig(dir, [{ uuid: keepstoreUuid(0), port: port!, root, stateDir: path.join(dir, 'state') }])
  return startKeepstoreChild({
    config,
    uuid: keepstoreUuid(0),
    url: `http://127.0.0.1:${port}`,
    logFile: path.join(dir, 'keepstore.log'),
    logLevel: settings.logLevel,
    ...(options.cpuProfDir ? { cpuProfDir: options.cpuProfDir } : {}),
  })
}

/** The throughput part: both servers side by side; a keepstore profile when BENCH_CPU_PROF=1. */
async function throughputPart(tmp: string, agent: Agent, stamp: string): Promise<{ phases: PhaseRecord[]; profile?: string }> {
  const profDir = settings.cpuProfile ? path.join(tmp, 'profile') : undefined
  const baseline = await startBaselineChild(path.join(tmp, 'baseline'), { hashOnGet: settings.baselineGetMd5 })
  const keepstore = await launchKeepstore(path.join(tmp, 'ks-throughput'), profDir ? { cpuProfDir: profDir } : {})
  let phases: PhaseRecord[]
  try {
    const targets: Target[] = [
      { name: 'baseline', server: baseline },
      { name: 'keepstore', server: keepstore, token: ADMIN_TOKEN },
    ]
    const cases = CASES.filter((c) => settings.cases.has(c.label.replace(/ /g, '')))
    if (settings.warmupSeconds > 0) await warmUp(agent, targets, cases, settings.warmupSeconds)
    phases = []
    for (let run = 0; run < settings.repeat; run++) {
      say(`throughput run ${run + 1} of ${settings.repeat}`)
      const report = (r: PhaseRecord): void =>
        say(`  ${r.case} ${r.op} ${r.target}: ${r.result.requests} req in ${r.result.seconds.toFixed(1)} s, ${r.result.requestsPerSecond.toFixed(1)} req/s, ${r.result.megabytesPerSecond.toFixed(1)} MB/s, p50 ${r.result.p50Ms.toFixed(1)} ms, p99 ${r.result.p99Ms.toFixed(1)} ms, server cpu ${r.serverCpuSeconds.toFixed(1)} s`)
      phases.push(...(await runThroughput(agent, targets, cases, settings, report, run)))
    }
  } finally {
    // SIGTERM, so the keepstore writes its profile.
    await Promise.all([baseline.stop(), keepstore.stop()])
  }
  rmSync(path.join(tmp, 'baseline'), { recursive: true, force: true })
  rmSync(path.join(tmp, 'ks-throughput'), { recursive: true, force: true })
  const file = profDir && existsSync(profDir) ? readdirSync(profDir).find((f) => f.endsWith('.cpuprofile')) : undefined
  if (!profDir || !file) return { phases }
  mkdirSync(RESULTS, { recursive: true })
  const profile = path.join(RESULTS, `${stamp.replace(/[:.]/g, '-')}-keepstore.cpuprofile`)
  copyFileSync(path.join(profDir, file), profile)
  return { phases, profile }
}

/** The memory part: a fresh keepstore, then a fresh baseline, each under the same concurrent 64 MiB PUTs. */
async function memoryPart(tmp: string, agent: Agent): Promise<{ keepstore: MemoryResult; baseline: MemoryResult }> {
  say(`memory: ${settings.memoryPuts} concurrent 64 MiB PUTs into a fresh keepstore, then a fresh baseline`)
  const measure = async (server: ChildServer, token?: string): Promise<MemoryResult> => {
    try {
      return await measurePutMemory(agent, server, { puts: settings.memoryPuts, ...(token ? { token } : {}) })
    } finally {
      await server.stop()
    }
  }
  const keepstore = await measure(await launchKeepstore(path.join(tmp, 'ks-memory')), ADMIN_TOKEN)
  const baseline = await measure(await startBaselineChild(path.join(tmp, 'baseline-memory')))
  rmSync(path.join(tmp, 'ks-memory'), { recursive: true, force: true })
  rmSync(path.join(tmp, 'baseline-memory'), { recursive: true, force: true })
  return { keepstore, baseline }
}

/** The index part: a volume filled on disk before its keepstore starts, listed by GET /index and by find. */
async function indexPart(tmp: string, agent: Agent): Promise<IndexBenchResult> {
  say(`index: writing ${settings.indexBlocks} blocks into a volume directory`)
  let root = ''
  const populate = (r: string): void => {
    root = r
    populateVolume(r, settings.indexBlocks)
  }
  const keepstore = await launchKeepstore(path.join(tmp, 'ks-index'), { populate })
  try {
    return await compareIndexWithFind(agent, keepstore.url, ADMIN_TOKEN, root, settings.indexBlocks)
  } finally {
    await keepstore.stop()
  }
}

/** The last warnings and errors of the throughput keepstore's log (JSON lines at level ≥ 40). */
function keepstoreWarnings(tmp: string): string {
  const log = path.join(tmp, 'ks-throughput', 'keepstore.log')
  if (!existsSync(log)) return 'no keepstore log'
  const lines = readFileSync(log, 'utf8').split('\n').filter((l) => /"level":(4|5|6)\d/.test(l) || (l && !l.startsWith('{')))
  return lines.length ? `keepstore log, last warnings:\n${lines.slice(-10).join('\n')}` : 'the keepstore logged no warning'
}

await runMain(async () => {
  const tmp = mkdtempSync(path.join(env.BENCH_TMP ?? os.tmpdir(), 'keep-bench-'))
  // Ctrl-C or a closed pipe skips the finally below: still leave no data behind.
  process.once('exit', () => {
    killAll()
    if (env.BENCH_KEEP_TMP !== '1') rmSync(tmp, { recursive: true, force: true })
  })
  const stamp = new Date().toISOString()
  const agent = createLoadAgent()
  const loadBefore = os.loadavg()
  say(
    `keep bench: ${os.cpus().length} cpus (load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}), node ${process.version}, data in ${tmp}\n` +
      `phases: ${settings.seconds} s or ${settings.maxBytes / MiB} MiB each, in ${settings.rounds} alternating slices, ${settings.repeat} runs (medians); blob signing on (PUT with a token, GET by the signed locator + token)`,
  )
  let throughput: { phases: PhaseRecord[]; profile?: string } = { phases: [] }
  let memory: { keepstore: MemoryResult; baseline: MemoryResult } | undefined
  let index: IndexBenchResult | undefined
  try {
    if (settings.only.has('throughput')) throughput = await throughputPart(tmp, agent, stamp)
    if (settings.only.has('memory')) memory = await memoryPart(tmp, agent)
    if (settings.only.has('index')) index = await indexPart(tmp, agent)
  } catch (err) {
    // The temp dir (and the keepstore's log in it) is about to go: show its warnings first.
    say(keepstoreWarnings(tmp))
    throw err
  } finally {
    killAll()
    await agent.close()
    if (env.BENCH_KEEP_TMP !== '1') rmSync(tmp, { recursive: true, force: true })
  }

  const { phases, profile } = throughput
  process.stdout.write(`\n${renderReport(phases, index, memory?.keepstore, memory?.baseline)}\n`)
  const results = {
    startedAt: stamp,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryBytes: os.totalmem(), node: process.version, loadBefore, loadAfter: os.loadavg() },
    settings: { ...settings, only: [...settings.only], cases: [...settings.cases] },
    phases,
    memory: memory?.keepstore,
    baselineMemory: memory?.baseline,
    index,
    verdicts: verdicts(phases, index, memory?.keepstore),
    ...(profile ? { keepstoreCpuProfile: profile } : {}),
  }
  mkdirSync(RESULTS, { recursive: true })
  const file = path.join(RESULTS, `${stamp.replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`)
  process.stdout.write(`results: ${path.relative(process.cwd(), file)}${profile ? `, keepstore profile: ${path.relative(process.cwd(), profile)}` : ''}\n`)
})
