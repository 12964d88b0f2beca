import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parse as parseLossless } from 'lossless-json'
import type { Test } from 'tap'
import type { Report } from '../../datamanager/report.js'
import { md5hex } from '../../shared/hash.js'
import { serviceOrder } from '../../shared/rendezvous.js'
import { createSigner } from '../../shared/signer.js'
import { ADMIN_TOKEN, SIGNING_KEY, call, freePorts } from './cluster.js'
import { clusterSection } from './cluster-config.js'
import { startKeepProxy, type KeepProxy } from './keep-proxy.js'

// Compiled to dist/test/helpers/: the repository root is three levels up.
const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const BIN = { keepstore: path.join(REPO, 'bin/keepstore'), datamanager: path.join(REPO, 'bin/datamanager') }
const FIXED_CLOCK = new URL('./fixed-clock.js', import.meta.url).href
/** Liveness only: a child that has not started (or finished) by then is broken, not slow. */
const DEADLINE_MS = 30_000

export interface ProcessClusterOptions {
  keepstores: number
  /** Extra cluster keys; blobSigningTTL defaults to 1h. */
  cluster?: Record<string, unknown>
  /** Put a recording {@link KeepProxy} in front of every keepstore (the config names the proxy's url). */
  proxies?: boolean
  /**
   * Keepstore i serves, read-only, the volume directory of keepstore j
   * (through a symlink: one directory reached by two paths). Keepstore i
   * must start before j claims the directory (see `startFirst`).
   */
  sharesRootOf?: Record<number, number>
  /** Started first, one after the other; the rest then start together. */
  startFirst?: number[]
  /** Date.now() in every child (keepstores and datamanager runs), via the fixed-clock preload. */
  fixedNowMs?: number
}

/** One `bin/keepstore` child process with one directory volume. */
export interface KeepstoreProcess {
  index: number
  uuid: string
  /** The uuid of its one volume. */
  mount: string
  /** What the cluster config names: the proxy's url when there is one. */
  url: string
  /** Where the process itself listens. */
  direct: string
  /** Its volume directory (a symlink for a keepstore that shares another's). */
  root: string
  proxy: KeepProxy | undefined
  start(): Promise<void>
  /** SIGTERM, then waits for the exit (it must be 0). */
  stop(): Promise<number | null>
}

export interface DmRunOptions {
  /** Names the run's state directory and collections file: runs with one name share the last-run state. */
  name: string
  /** The collections file (`.jsonl`) text. */
  collections: string
  /** Indexes of the keepstores this run's config lists (default: all). */
  keepstores?: number[]
  /** Extra arguments after `--once`, e.g. `--force`. */
  args?: string[]
  /** Keepstore index → the url this run's config gives it instead (e.g. `direct`, bypassing its proxy). */
  urls?: Record<number, string>
}

export interface DmResult {
  code: number | null
  stdout: string
  stderr: string
  /** `undefined` when the run wrote none (lock held, bad config). */
  report: Report | undefined
}

export interface ProcessCluster {
  dir: string
  /** The config the keepstores run with (every keepstore, no datamanager section). */
  configFile: string
  keepstores: KeepstoreProcess[]
  /** The keepstores in rendezvous order for `hash` (PROTOCOL §6), among `among` (default: all). */
  order(hash: string, among?: KeepstoreProcess[]): KeepstoreProcess[]
  /** One `bin/datamanager --once` child: waits for its exit. */
  datamanager(options: DmRunOptions): Promise<DmResult>
  /** A locator `hash+size` signed for the admin token, valid by the children's clock. */
  sign(locator: string): string
}

/**
 * Child keepstores on real directory volumes (`bin/keepstore --config F
 * --uuid U`, each in `<dir>/ks<i>`), and the datamanager as a child too.
 * Every child is stopped at teardown.
 */
export async function startProcessCluster(t: Test, options: ProcessClusterOptions): Promise<ProcessCluster> {
  const dir = t.testdir({})
  const n = options.keepstores
  const ports = await freePorts(options.proxies ? 2 * n : n)
  const nodeArgs = options.fixedNowMs === undefined ? [] : ['--import', FIXED_CLOCK]
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '', LOG_LEVEL: 'info' }
  if (options.fixedNowMs !== undefined) env.KEEP_TEST_NOW_MS = String(options.fixedNowMs)
  const shares = options.sharesRootOf ?? {}
  const configFile = path.join(dir, 'cluster.json')
  const keepstores: ChildKeepstore[] = []
  for (let i = 0; i < n; i++) {
    const direct = `http://127.0.0.1:${ports[i]}`
    const proxy = options.proxies ? await startKeepProxy(direct, ports[n + i]!) : undefined
    const root = path.join(dir, `ks${i}`)
    keepstores.push(new ChildKeepstore({
      index: i,
      uuid: `zzzzz-bi6l4-${String(i).padStart(15, '0')}`,
      mount: `zzzzz-nyw5e-${String(i).padStart(15, '0')}`,
      direct,
      url: proxy?.url ?? direct,
      root,
      proxy,
      spawn: (uuid) => spawnChild(BIN.keepstore, [...nodeArgs], ['--config', configFile, '--uuid', uuid], env),
    }))
  }
  t.teardown(async () => {
    await Promise.all(keepstores.map((k) => k.stop()))
    await Promise.all(keepstores.map((k) => k.proxy?.close()))
  })
  for (const k of keepstores) {
    const source = shares[k.index]
    if (source === undefined) await mkdir(k.root, { recursive: true })
    else await symlink(keepstores[source]!.root, k.root)
  }
  const doc = clusterDoc(keepstores, dir, shares, options.cluster)
  await writeFile(configFile, JSON.stringify(doc, null, 2))
  const first = options.startFirst ?? []
  for (const i of first) await keepstores[i]!.start()
  await Promise.all(keepstores.filter((k) => !first.includes(k.index)).map((k) => k.start()))

  const ttlSeconds = 3600
  const signer = createSigner({ key: SIGNING_KEY, ttlSeconds, maxClockSkewSeconds: 600, now: () => options.fixedNowMs ?? Date.now() })
  return {
    dir,
    configFile,
    keepstores,
    order: (hash, among = keepstores) => serviceOrder(hash, among, (k) => k.uuid),
    sign: (locator) => signer.sign(locator, ADMIN_TOKEN, Math.floor((options.fixedNowMs ?? Date.now()) / 1000) + 60),
    async datamanager(run) {
      const base = path.join(dir, `dm-${run.name}`)
      await mkdir(base, { recursive: true })
      const collections = path.join(base, 'collections.jsonl')
      await writeFile(collections, run.collections)
      const listed = run.keepstores ?? keepstores.map((k) => k.index)
      const file = path.join(base, 'config.json')
      await writeFile(file, JSON.stringify({
        ...doc,
        keepstores: doc.keepstores.flatMap((ks, i) => (listed.includes(i) ? [{ ...ks, url: run.urls?.[i] ?? ks.url }] : [])),
        datamanager: { collections, stateDir: path.join(base, 'state') },
      }))
      const child = spawnChild(BIN.datamanager, nodeArgs, ['--config', file, '--once', ...(run.args ?? [])], env)
      const out = collect(child)
      const code = await exited(child, DEADLINE_MS)
      const report = await readFile(path.join(base, 'state', 'report.json'), 'utf8').then(
        (text) => JSON.parse(text) as Report,
        () => undefined,
      )
      return { code, stdout: out.stdout(), stderr: out.stderr(), report }
    },
  }
}

function clusterDoc(keepstores: ChildKeepstore[], dir: string, shares: Record<number, number>, extra: Record<string, unknown> = {}) {
  return {
    cluster: clusterSection({ blobSigningTTL: '1h', ...extra }),
    keepstores: keepstores.map((k) => ({
      uuid: k.uuid,
      url: k.url,
      listen: new URL(k.direct).host,
      stateDir: path.join(dir, `state${k.index}`),
      volumes: [{ uuid: k.mount, driver: 'directory', root: k.root, ...(shares[k.index] === undefined ? {} : { readOnly: true }) }],
    })),
  }
}

interface ChildKeepstoreInit {
  index: number
  uuid: string
  mount: string
  url: string
  direct: string
  root: string
  proxy: KeepProxy | undefined
  spawn(uuid: string): ChildProcess
}

class ChildKeepstore implements KeepstoreProcess {
  readonly index: number
  readonly uuid: string
  readonly mount: string
  readonly url: string
  readonly direct: string
  readonly root: string
  readonly proxy: KeepProxy | undefined
  private readonly spawnIt: (uuid: string) => ChildProcess
  private child: ChildProcess | undefined

  constructor(init: ChildKeepstoreInit) {
    this.index = init.index
    this.uuid = init.uuid
    this.mount = init.mount
    this.url = init.url
    this.direct = init.direct
    this.root = init.root
    this.proxy = init.proxy
    this.spawnIt = init.spawn
  }

  /** Resolves once the process logs that it listens; rejects (with its stderr) if it exits first. */
  async start(): Promise<void> {
    if (this.child !== undefined) throw new Error(`keepstore ${this.index} is already running`)
    const child = this.spawnIt(this.uuid)
    this.child = child
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    const lines = createInterface({ input: child.stdout! })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`keepstore ${this.index} did not listen within ${DEADLINE_MS} ms`)), DEADLINE_MS)
      const onExit = (code: number | null): void => {
        clearTimeout(timer)
        this.child = undefined
        reject(new Error(`keepstore ${this.index} exited (${code}) before listening: ${stderr}`))
      }
      child.once('exit', onExit)
      lines.on('line', (line) => {
        if (!line.includes('"msg":"keepstore listening"')) return
        clearTimeout(timer)
        child.off('exit', onExit)
        resolve()
      })
    })
  }

  async stop(): Promise<number | null> {
    const child = this.child
    if (child === undefined) return null
    this.child = undefined
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
    child.kill('SIGTERM')
    return exited(child, DEADLINE_MS)
  }
}

function spawnChild(bin: string, nodeArgs: string[], args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  // Without tap's NODE_OPTIONS: its loaders are for test files, not for the programs under test.
  return spawn(process.execPath, [...nodeArgs, bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
}

function collect(child: ChildProcess): { stdout(): string; stderr(): string } {
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  return { stdout: () => stdout, stderr: () => stderr }
}

function exited(child: ChildProcess, deadlineMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
  })
}

/** Stores `data` on keepstore `ks` (its one volume); returns `hash+size`. */
export async function putOn(ks: KeepstoreProcess, data: string | Buffer): Promise<string> {
  const hash = md5hex(data)
  const res = await call(ks.direct, 'PUT', `/${hash}`, { body: data })
  if (res.status !== 200) throw new Error(`PUT ${hash} to keepstore ${ks.index}: ${res.status} ${res.text}`)
  return `${hash}+${Buffer.byteLength(data)}`
}

/** The file a directory volume keeps `hash` in. */
export function blockFile(ks: KeepstoreProcess, hash: string): string {
  return path.join(ks.root, hash.slice(0, 3), hash)
}

/** `GET /pull` or `GET /trash` of a keepstore (PROTOCOL §3), `block_mtime` kept exact. */
export interface ListStatus {
  received_at: string | null
  digest: string | null
  queued: number
  in_progress: number
  done: number
  failed: number
  skipped: number
  items: Array<Record<string, unknown>>
}

export async function listStatus(ks: KeepstoreProcess, list: 'pull' | 'trash'): Promise<ListStatus> {
  const res = await call(ks.direct, 'GET', `/${list}`, { token: ADMIN_TOKEN })
  if (res.status !== 200) throw new Error(`GET /${list} of keepstore ${ks.index}: ${res.status}`)
  return parseExact(res.text) as ListStatus
}

/** JSON with every integer beyond 2^53 as a bigint (a plain JSON.parse would round nanosecond mtimes). */
export function parseExact(text: string): unknown {
  return parseLossless(text, null, (n) => (/^-?\d+$/.test(n) && !Number.isSafeInteger(Number(n)) ? BigInt(n) : Number(n)))
}

/**
 * Waits until every keepstore's `list` has nothing queued or in progress
 * (the lists are persisted before the datamanager's PUT returns, so this
 * cannot pass before the work arrived). Polls: the workers live in other
 * processes. The deadline is liveness only.
 */
export async function drained(keepstores: readonly KeepstoreProcess[], list: 'pull' | 'trash'): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS
  for (;;) {
    const states = await Promise.all(keepstores.map((k) => listStatus(k, list)))
    if (states.every((s) => s.queued === 0 && s.in_progress === 0)) return
    if (Date.now() > deadline) throw new Error(`${list} lists not drained within ${DEADLINE_MS} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
