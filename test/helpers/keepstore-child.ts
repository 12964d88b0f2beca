import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { freePorts } from './cluster.js'
import { clusterSection } from './cluster-config.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
export const KEEPSTORE_BIN = path.join(repo, 'bin/keepstore')

export interface ChildClusterOptions {
  keepstores?: number
  /** Extra `cluster:` keys, e.g. { blobSigningTTL: '1s' }. */
  cluster?: Record<string, unknown>
  /** Extra keys for every keepstore, e.g. { pullConcurrency: 2 }. */
  keepstore?: Record<string, unknown>
}

export interface ChildCluster {
  /** The config file every child is started with. */
  file: string
  uuids: string[]
  urls: string[]
  /** Volume uuid and root of keepstore i (one directory volume each). */
  volumes: Array<{ uuid: string; root: string }>
}

/** Writes a config file for N keepstores on free loopback ports, one directory volume each. */
export async function writeChildCluster(dir: string, options: ChildClusterOptions = {}): Promise<ChildCluster> {
  const n = options.keepstores ?? 1
  const ports = await freePorts(n)
  const uuids = ports.map((_, i) => `zzzzz-bi6l4-${String(i).padStart(15, '0')}`)
  const urls = ports.map((p) => `http://127.0.0.1:${p}`)
  const volumes = ports.map((_, i) => ({ uuid: `zzzzz-nyw5e-${String(i).padStart(15, '0')}`, root: path.join(dir, `disk${i}`) }))
  for (const v of volumes) await mkdir(v.root, { recursive: true })
  const doc = {
    cluster: clusterSection(options.cluster),
    keepstores: uuids.map((uuid, i) => ({
      uuid,
      url: urls[i],
      stateDir: path.join(dir, `state${i}`),
      ...options.keepstore,
      volumes: [{ uuid: volumes[i]!.uuid, driver: 'directory', root: volumes[i]!.root }],
    })),
  }
  const file = path.join(dir, 'cluster.json')
  await writeFile(file, JSON.stringify(doc, null, 2))
  return { file, uuids, urls, volumes }
}

export interface KeepstoreChild {
  child: ChildProcess
  pid: number
  /** Log lines (raw JSON text) the child printed so far. */
  lines: string[]
  /** Resolves with the first log line containing `text` (already printed or to come). */
  waitForLine(text: string): Promise<string>
  /** SIGKILL, resolved once the process is gone. */
  kill(): Promise<void>
  /** SIGTERM and wait for the exit. */
  stop(): Promise<number | null>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export interface SpawnOptions {
  /** Run the keepstore under this command, e.g. ['strace', '-f', '-o', FILE]. */
  wrapper?: string[]
  env?: Record<string, string>
}

/**
 * Starts `bin/keepstore --config F --uuid U` as a child process and resolves
 * once it logs that it listens (an event, not a poll). A child that exits
 * before that rejects with its stderr.
 */
export async function spawnKeepstore(cluster: ChildCluster, i: number, options: SpawnOptions = {}): Promise<KeepstoreChild> {
  const args = [KEEPSTORE_BIN, ...keepstoreArgs(cluster, i)]
  const wrapper = options.wrapper ?? []
  const command = wrapper.length > 0 ? wrapper[0]! : process.execPath
  const argv = wrapper.length > 0 ? [...wrapper.slice(1), process.execPath, ...args] : args
  const ks = watchChild(spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(options.env) }))
  await ks.waitForLine('keepstore listening')
  return ks
}

function keepstoreArgs(cluster: ChildCluster, i: number): string[] {
  return ['--config', cluster.file, '--uuid', cluster.uuids[i]!, '--log-level', 'info']
}

/** Without tap's NODE_OPTIONS: its loaders are for test files, not for the program under test. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, NODE_OPTIONS: '', ...extra }
}

export interface KeepstoreLauncher {
  /** Starts keepstore i from a warm process (bin/keepstore's entry point, modules preloaded); the next one warms at once. */
  start(): Promise<KeepstoreChild>
  close(): Promise<void>
}

/**
 * Restarts without the module loading: one launcher process (see
 * keepstore-launcher.ts) is always warm, waiting for its arguments.
 */
export function createLauncher(cluster: ChildCluster, i: number): KeepstoreLauncher {
  const warm = (): { ks: KeepstoreChild; ready: Promise<string> } => {
    const ks = watchChild(spawn(process.execPath, [LAUNCHER], { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv() }))
    const ready = ks.waitForLine('warm')
    ready.catch(() => undefined)
    return { ks, ready }
  }
  let next = warm()
  return {
    async start() {
      const { ks, ready } = next
      await ready
      next = warm()
      ks.child.stdin!.end(`${JSON.stringify(keepstoreArgs(cluster, i))}\n`)
      await ks.waitForLine('keepstore listening')
      return ks
    },
    async close() {
      await next.ks.kill()
    },
  }
}

const LAUNCHER = fileURLToPath(new URL('./keepstore-launcher.js', import.meta.url))

function watchChild(child: ChildProcess): KeepstoreChild {
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const lines: string[] = []
  const waiters: Array<{ text: string; resolve: (line: string) => void }> = []
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line)
    for (const w of [...waiters]) {
      if (!line.includes(w.text)) continue
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(line)
    }
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  )
  const waitForLine = (text: string): Promise<string> => {
    const seen = lines.find((l) => l.includes(text))
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise<string>((resolve, reject) => {
      waiters.push({ text, resolve })
      void exited.then(({ code, signal }) => reject(new Error(`keepstore exited (${signal ?? code}) before logging "${text}": ${stderr.trim()}`)))
    })
  }
  return {
    child,
    pid: child.pid!,
    lines,
    waitForLine,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      return (await exited).code
    },
  }
}
