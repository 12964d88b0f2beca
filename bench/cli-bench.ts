/**
 * `npm run bench:cli`: `keep put` and `keep get` of one large file against a
 * local 3-keepstore cluster (child processes, directory volumes, blob signing
 * on, 2 replicas), side by side with curl moving the same blocks to and from
 * the same servers at the same concurrency in the same run:
 * - put: `keep put FILE` vs one curl (`--parallel`) PUTting every block file
 *   (the file cut beforehand; hashes known) to its first 2 rendezvous servers;
 * - get: `keep get LINE -o OUT` vs one curl GETting every block's signed
 *   locator from its first server into a file per block.
 * Volumes are emptied before every put, so both write fresh blocks; rounds
 * alternate the order (ABBA) so background load hits both. Peak RSS and CPU
 * of each process come from /usr/bin/time. Output: per-run lines and the
 * summary, recorded in bench/results/cli-<time>.txt (and .json, not committed).
 * Environment: BENCH_CLI_BYTES (1GiB), BENCH_CLI_ROUNDS (2), BENCH_CLI_PARALLEL
 * (3: keep's --parallel; curl gets parallel × replicas transfers), BENCH_TMP,
 * BENCH_KEEP_TMP=1, BENCH_CLI_PIN=1: the keepstores pinned to the first half
 * of the CPUs and the client (keep or curl) to the other half (taskset), as
 * when the client runs on a host of its own; unpinned, the client and three
 * keepstores share every core, and a client that spends more CPU (keep get
 * verifies MD5; curl does not) takes it from the servers it waits on.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseSize } from '../shared/duration.js'
import { KeepError } from '../shared/errors.js'
import { runMain } from '../shared/cli.js'
import { serviceOrder } from '../shared/rendezvous.js'
import { createSigner } from '../shared/signer.js'
import { createBlockSource, MiB } from './blocks.js'
import { ADMIN_TOKEN, SIGNING_KEY, freePorts, killAll, keepstoreUuid, startKeepstoreChild, writeClusterConfig, type ChildServer, type KeepstoreSpec } from './children.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const RESULTS = path.join(REPO, 'bench/results')
const KEEP = path.join(REPO, 'bin/keep')
const env = process.env
const settings = {
  bytes: parseSize(env.BENCH_CLI_BYTES ?? '1GiB', 'BENCH_CLI_BYTES'),
  rounds: Number(env.BENCH_CLI_ROUNDS ?? 2),
  parallel: Number(env.BENCH_CLI_PARALLEL ?? 3),
  replicas: 2,
  keepstores: 3,
  pinned: env.BENCH_CLI_PIN === '1',
}
const CPUS = os.cpus().length
/** With BENCH_CLI_PIN=1: CPU lists (taskset -c) for the keepstores and for the client. */
const pins = settings.pinned ? { servers: `0-${Math.max(0, Math.floor(CPUS / 2) - 1)}`, client: `${Math.floor(CPUS / 2)}-${CPUS - 1}` } : undefined
const TARGET = 0.9
const BLOCK = 64 * MiB
/** Progress lines: on stderr as they happen, and kept for the record file. */
const log: string[] = []
const say = (s: string): void => {
  log.push(s)
  process.stderr.write(`${s}\n`)
}

interface Timed {
  seconds: number
  /** Peak RSS in bytes (GNU time %M). */
  peakRss: number
  cpuSeconds: number
  /** CPU the keepstores spent meanwhile (they share the 2 cores with the client). */
  serverCpuSeconds: number
}

/** CPU seconds a running process has used (/proc/PID/stat utime + stime, at 100 ticks a second). */
function processCpu(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Runs a command under /usr/bin/time; wall time measured here, peak RSS and CPU from time's report. */
function timed(command: string, args: string[], extraEnv: Record<string, string> = {}, servers: readonly ChildServer[] = []): Promise<Timed> {
  const serverCpu = (): number => servers.reduce((sum, s) => sum + processCpu(s.pid), 0)
  const serverBefore = serverCpu()
  const report = path.join(os.tmpdir(), `keep-cli-bench-time-${process.pid}`)
  const started = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    const timeArgs = ['-o', report, '-f', '%M %U %S', command, ...args]
    const [file, fileArgs] = pins ? ['taskset', ['-c', pins.client, '/usr/bin/time', ...timeArgs]] : ['/usr/bin/time', timeArgs]
    execFile(file, fileArgs, { env: { ...process.env, ...extraEnv }, maxBuffer: 64 * MiB }, (err, _stdout, stderr) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      if (err) return reject(new KeepError('KEEP_INTERNAL', `${path.basename(command)} failed: ${stderr.split('\n').slice(-3).join(' ')}`))
      const [kb, user, sys] = timeReport(report).split(' ').map(Number)
      resolve({ seconds, peakRss: kb! * 1024, cpuSeconds: user! + sys!, serverCpuSeconds: serverCpu() - serverBefore })
    })
  })
}

/** Runs a command to its end; its stderr in the error if it fails. */
function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, (err, _stdout, stderr) => (err ? reject(new KeepError('KEEP_INTERNAL', `${command} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve()))
  })
}

/** The last line of GNU time's report file, then the file removed. */
function timeReport(file: string): string {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : ''
  rmSync(file, { force: true })
  return text.trim().split('\n').at(-1) ?? ''
}

/** Empties a directory volume (block files only; the volume id file stays). */
function emptyVolume(root: string): void {
  for (const sub of readdirSync(root)) if (/^[0-9a-f]{3}$/.test(sub)) rmSync(path.join(root, sub), { recursive: true, force: true })
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

await runMain(async () => {
  if (!existsSync('/usr/bin/time')) throw new KeepError('KEEP_CONFIG', 'bench:cli needs GNU time at /usr/bin/time (apt-get install time)')
  if (pins && CPUS < 2) throw new KeepError('KEEP_CONFIG', 'BENCH_CLI_PIN=1 needs 2 or more CPUs')
  const tmp = mkdtempSync(path.join(env.BENCH_TMP ?? os.tmpdir(), 'keep-cli-bench-'))
  process.once('exit', () => {
    killAll()
    if (env.BENCH_KEEP_TMP !== '1') rmSync(tmp, { recursive: true, force: true })
  })
  const stamp = new Date().toISOString()
  const ports = await freePorts(settings.keepstores)
  const specs: KeepstoreSpec[] = ports.map((port, i) => ({ uuid: keepstoreUuid(i), port, root: path.join(tmp, `ks${i}`, 'volume'), stateDir: path.join(tmp, `ks${i}`, 'state') }))
  const config = writeClusterConfig(tmp, specs)
  const urls = specs.map((s) => `http://127.0.0.1:${s.port}`)
  const servers: ChildServer[] = []

  // The input: distinct 64 MiB blocks (shared random prefix + counter), as one file and as block files for curl.
  const source = createBlockSource(BLOCK)
  const input = path.join(tmp, 'input')
  const blockDir = path.join(tmp, 'blocks')
  mkdirSync(blockDir)
  const blocks: Array<{ hash: string; size: number; file: string }> = []
  const fd = openSync(input, 'w')
  for (let at = 0; at < settings.bytes; at += BLOCK) {
    const size = Math.min(BLOCK, settings.bytes - at)
    const block = source.next()
    const bytes = Buffer.concat(block.parts as Buffer[]).subarray(0, size)
    const hash = size === BLOCK ? block.hash : createHash('md5').update(bytes).digest('hex')
    writeSync(fd, bytes)
    const file = path.join(blockDir, hash)
    writeFileSync(file, bytes)
    blocks.push({ hash, size, file })
  }
  closeSync(fd)
  // The floor of what keep get must spend beyond curl: one MD5 pass over the bytes (CPU of this process).
  const md5Cpu = (() => {
    const started = process.cpuUsage()
    const md5 = createHash('md5')
    const chunk = Buffer.allocUnsafe(MiB)
    const input = openSync(path.join(tmp, 'input'), 'r')
    for (let n; (n = readSync(input, chunk, 0, MiB, null)) > 0; ) md5.update(chunk.subarray(0, n))
    closeSync(input)
    md5.digest()
    const used = process.cpuUsage(started)
    return (used.user + used.system) / 1e6
  })()
  const keepstores = specs.map((s, i) => ({ uuid: s.uuid, url: urls[i]! }))
  const first = (hash: string, n: number): string[] => serviceOrder(hash, keepstores, (k) => k.uuid).slice(0, n).map((k) => k.url)
  const line = `. ${blocks.map((b) => `${b.hash}+${b.size}`).join(' ')} 0:${settings.bytes}:input`
  const signer = createSigner({ key: SIGNING_KEY, ttlSeconds: 336 * 3600, maxClockSkewSeconds: 600 })
  const curlPutArgs = ['-sS', '--fail', '-Z', '--parallel-max', String(settings.parallel * settings.replicas), '-H', `Authorization: Bearer ${ADMIN_TOKEN}`, '-o', '/dev/null']
  for (const b of blocks) for (const url of first(b.hash, settings.replicas)) curlPutArgs.push('-T', b.file, `${url}/${b.hash}+${b.size}`)
  const outDir = path.join(tmp, 'out')
  const curlGetArgs = (): string[] => {
    const args = ['-sS', '--fail', '-Z', '--parallel-max', String(settings.parallel), '-H', `Authorization: Bearer ${ADMIN_TOKEN}`]
    for (const b of blocks) args.push('-o', path.join(outDir, b.hash), `${first(b.hash, 1)[0]}/${signer.sign(`${b.hash}+${b.size}`, ADMIN_TOKEN)}`)
    return args
  }
  const keepEnv = { KEEP_CONFIG: config }

  const results: Record<'keep put' | 'curl put' | 'keep get' | 'curl get', Timed[]> = { 'keep put': [], 'curl put': [], 'keep get': [], 'curl get': [] }
  const fresh = (): void => specs.forEach((s) => emptyVolume(s.root))
  const steps = {
    'keep put': async () => {
      fresh()
      return timed(process.execPath, [KEEP, 'put', '--no-progress', '--parallel', String(settings.parallel), input], keepEnv, servers)
    },
    'curl put': async () => {
      fresh()
      return timed('curl', curlPutArgs, {}, servers)
    },
    'keep get': async () => {
      rmSync(outDir, { recursive: true, force: true })
      mkdirSync(outDir)
      return timed(process.execPath, [KEEP, 'get', '--no-progress', '--parallel', String(settings.parallel), '-o', path.join(outDir, 'input'), line], keepEnv, servers)
    },
    'curl get': async () => {
      rmSync(outDir, { recursive: true, force: true })
      mkdirSync(outDir)
      return timed('curl', curlGetArgs(), {}, servers)
    },
  }
  try {
    for (let i = 0; i < specs.length; i++) {
      servers.push(await startKeepstoreChild({ config, uuid: specs[i]!.uuid, url: urls[i]!, logFile: path.join(tmp, `keepstore-${i}.log`), logLevel: 'warn' }))
    }
    // Every thread of each keepstore (-a), the ones it starts later inherit it.
    if (pins) for (const s of servers) await run('taskset', ['-a', '-p', '-c', pins.servers, String(s.pid)])
    const pinning = pins ? `; keepstores pinned to CPU ${pins.servers}, client to CPU ${pins.client}` : '; unpinned (client and keepstores share every core)'
    say(`cli bench: ${settings.bytes / MiB} MiB as ${blocks.length} blocks, ${settings.keepstores} keepstores, ${settings.replicas} replicas, parallel ${settings.parallel}, ${settings.rounds} rounds (load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, ${CPUS} cores${pinning}); data in ${tmp}`)
    for (let r = 0; r < settings.rounds; r++) {
      const order: Array<keyof typeof steps> = r % 2 === 0 ? ['keep put', 'curl put', 'curl get', 'keep get'] : ['curl put', 'keep put', 'keep get', 'curl get']
      for (const name of order) {
        // The gets read what the round's last put stored (keep or curl: the same blocks on the same servers).
        const run = await steps[name]()
        results[name].push(run)
        say(`  round ${r + 1} ${name}: ${run.seconds.toFixed(2)} s, ${(settings.bytes / MiB / run.seconds).toFixed(1)} MiB/s, peak RSS ${(run.peakRss / MiB).toFixed(0)} MiB, CPU ${run.cpuSeconds.toFixed(2)} s (keepstores ${run.serverCpuSeconds.toFixed(2)} s), load ${os.loadavg()[0]!.toFixed(2)}`)
      }
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }

  const rate = (name: keyof typeof results): number => settings.bytes / MiB / median(results[name].map((r) => r.seconds))
  const putRatio = rate('keep put') / rate('curl put')
  const getRatio = rate('keep get') / rate('curl get')
  const peak = Math.max(...results['keep put'].map((r) => r.peakRss))
  const verdict = (ratio: number): string => `${ratio.toFixed(2)} (target ≥ ${TARGET}) ${ratio >= TARGET ? 'PASS' : 'MISS'}`
  const report =
    `cli bench ${stamp}: ${settings.bytes / MiB} MiB file, ${blocks.length} blocks, ${settings.keepstores} keepstores (children, directory volumes, signing on), ` +
    `${settings.replicas} replicas, parallel ${settings.parallel}, ${settings.rounds} rounds, medians; load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${CPUS} cores` +
    `${pins ? `; pinned: keepstores on CPU ${pins.servers}, client on CPU ${pins.client} (a client host of its own)` : '; unpinned: client and keepstores share the cores'}\n` +
    `  put: keep ${rate('keep put').toFixed(1)} MiB/s, curl ${rate('curl put').toFixed(1)} MiB/s, ratio ${verdict(putRatio)}\n` +
    `  get: keep ${rate('keep get').toFixed(1)} MiB/s, curl ${rate('curl get').toFixed(1)} MiB/s, ratio ${verdict(getRatio)}\n` +
    `  keep put peak RSS ${(peak / MiB).toFixed(0)} MiB (${settings.parallel} blocks of 64 MiB in memory at most); ` +
    `CPU per run: keep put ${median(results['keep put'].map((r) => r.cpuSeconds)).toFixed(2)} s, curl put ${median(results['curl put'].map((r) => r.cpuSeconds)).toFixed(2)} s, ` +
    `keep get ${median(results['keep get'].map((r) => r.cpuSeconds)).toFixed(2)} s, curl get ${median(results['curl get'].map((r) => r.cpuSeconds)).toFixed(2)} s; ` +
    `keepstores per get: keep's ${median(results['keep get'].map((r) => r.serverCpuSeconds)).toFixed(2)} s, curl's ${median(results['curl get'].map((r) => r.serverCpuSeconds)).toFixed(2)} s; ` +
    `reading the input and one MD5 pass over it: ${md5Cpu.toFixed(2)} s (keep get verifies every byte, curl does not)\n`
  process.stdout.write(`\n${report}`)
  mkdirSync(RESULTS, { recursive: true })
  const base = path.join(RESULTS, `cli-${stamp.replace(/[:.]/g, '-')}${pins ? '-pinned' : ''}`)
  writeFileSync(`${base}.txt`, `${log.join('\n')}\n\n${report}`)
  writeFileSync(`${base}.json`, `${JSON.stringify({ startedAt: stamp, settings, results, putRatio, getRatio, keepPutPeakRss: peak, load: os.loadavg() }, null, 2)}\n`)
  process.stdout.write(`results: ${path.relative(process.cwd(), base)}.txt\n`)
})
