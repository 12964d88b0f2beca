import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import type { Config } from '../../shared/config.js'
import { createEtcdClient } from '../../shared/etcd-client.js'
import { freePorts } from '../../shared/free-ports.js'
import { watchMembership, type MembershipView } from '../../shared/membership.js'

/** Where Debian's `etcd-server` puts the binary (PATH is searched too). */
export function findEtcd(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/local/bin']
  for (const dir of dirs) {
    const bin = path.join(dir, 'etcd')
    if (dir !== '' && existsSync(bin)) return bin
  }
  return undefined
}

/** The one line a test file prints when it skips for want of etcd. */
export const ETCD_MISSING = 'etcd is not installed: apt-get install -y etcd-server (.ci/run does) to run the etcd tests'

/**
 * Runs `body` against one etcd started for it (stopped when `body` is done),
 * as a subtest of `t`; without an etcd binary, one skipped subtest says why
 * and how to install it ({@link ETCD_MISSING}), never a silent skip. The subtest matters: a top-level teardown
 * would wait for an event loop that the etcd child keeps alive.
 */
export function withEtcd(t: Test, body: (t: Test, etcd: EtcdServer) => Promise<void>): void {
  const bin = findEtcd()
  if (bin === undefined) {
    t.test('the tests that need a real etcd', { skip: ETCD_MISSING }, async () => undefined)
    return
  }
  t.test(`one etcd member on loopback (${bin})`, async (t) => {
    const etcd = await startEtcd(t, bin)
    await body(t, etcd)
  })
}

/** Liveness only: one member on loopback is ready within a second here. */
const START_DEADLINE_MS = 20_000

export interface EtcdServer {
  /** `http://127.0.0.1:<client port>`, for `cluster.etcd.endpoints`. */
  endpoint: string
  dataDir: string
  /** The running process id (undefined while stopped). */
  readonly pid: number | undefined
  /** Stops it (SIGTERM to its pid; SIGKILL after 5 s) and waits for the exit. The data stays. */
  stop(): Promise<void>
  /** Starts it again on the same ports and data. */
  start(): Promise<void>
}

/**
 * One etcd member on free loopback ports with its data in a fresh temp dir
 * (`t.testdir()`), fast elections (a single member elects itself at once),
 * stopped by pid at teardown.
 */
export async function startEtcd(t: Test, bin: string): Promise<EtcdServer> {
  const dir = t.testdir({})
  const dataDir = path.join(dir, 'etcd-data')
  const [client, peer] = await freePorts(2)
  const endpoint = `http://127.0.0.1:${client}`
  const peerUrl = `http://127.0.0.1:${peer}`
  const args = [
    '--name', 'default', '--data-dir', dataDir,
    '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `default=${peerUrl}`,
    '--heartbeat-interval', '20', '--election-timeout', '200',
    '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn',
    '--enable-v2=false',
  ]
  let child: ChildProcess | undefined
  const server: EtcdServer = {
    endpoint,
    dataDir,
    get pid() {
      return child?.pid
    },
    async start() {
      if (child !== undefined) throw new Error('etcd is already running')
      const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] })
      child = proc
      await ready(proc, endpoint)
    },
    async stop() {
      const proc = child
      child = undefined
      if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
      process.kill(proc.pid!, 'SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
  t.teardown(() => server.stop())
  await server.start()
  return server
}

/** Resolves once the member answers its health endpoint (its own logs stay at warn level). */
async function ready(proc: ChildProcess, endpoint: string): Promise<void> {
  let stderr = ''
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    if (stderr.length < 10_000) stderr += `${line}\n`
  })
  const deadline = Date.now() + START_DEADLINE_MS
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`etcd exited (${proc.exitCode}) before serving: ${stderr}`)
    try {
      // A member that accepted the connection but does not answer must not stall the loop past its deadline.
      const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) })
      const body = (await res.json()) as { health?: string }
      if (body.health === 'true') return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  proc.kill('SIGKILL')
  throw new Error(`etcd did not serve within ${START_DEADLINE_MS} ms: ${stderr}`)
}

/**
 * Resolves with the time (ms) it took until `view` shows keepstore `uuid` in
 * `state`: at once if it already does, else on the change event. Rejects
 * after `deadlineMs` (liveness, not a benchmark).
 */
export function untilState(view: MembershipView, uuid: string, state: 'live' | 'absent', deadlineMs = 10_000): Promise<number> {
  const started = Date.now()
  if (view.members().find((m) => m.uuid === uuid)?.state === state) return Promise.resolve(0)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`keepstore ${uuid} not ${state} within ${deadlineMs} ms`))
    }, deadlineMs)
    const off = view.onChange((change) => {
      if (change.uuid !== uuid || change.state !== state) return
      clearTimeout(timer)
      off()
      resolve(Date.now() - started)
    })
  })
}

/** A membership view of `config` for a test, on a client of its own; closed at teardown. */
export async function testView(t: Test, config: Config): Promise<MembershipView> {
  const client = await createEtcdClient(config.cluster.etcd!)
  const view = watchMembership(client, config)
  t.teardown(async () => {
    await view.close()
    client.close()
  })
  if (!(await view.ready(10_000))) throw new Error('membership view did not list within 10 s')
  return view
}
