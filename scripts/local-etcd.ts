/**
 * `npm start`'s etcd: one member on loopback with its data in var/etcd, when
 * Debian's `etcd-server` is installed (live membership and one datamanager
 * cluster-wide, DESIGN §7). Without it the cluster runs as before.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseDocument } from 'yaml'

/** Beside the keepstores' ports, away from a system etcd on 2379. */
export const LOCAL_ETCD = { client: 'http://127.0.0.1:25179', peer: 'http://127.0.0.1:25180' }

export const ETCD_HINT = 'etcd: not installed, so no live membership (apt-get install -y etcd-server, then npm start again to use it)'

export function findEtcdBinary(): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin']) {
    if (dir !== '' && existsSync(path.join(dir, 'etcd'))) return path.join(dir, 'etcd')
  }
  return undefined
}

/** Adds `cluster.etcd` (the local member) to the config file unless it names an etcd already; comments are kept. */
export function ensureEtcdInConfig(configFile: string): 'added' | 'present' {
  const doc = parseDocument(readFileSync(configFile, 'utf8'))
  if (doc.hasIn(['cluster', 'etcd'])) return 'present'
  doc.setIn(['cluster', 'etcd'], doc.createNode({ endpoints: [LOCAL_ETCD.client], leaseTTL: '10s' }))
  writeFileSync(configFile, doc.toString(), { mode: 0o600 })
  return 'added'
}

/** Starts the member (log in `logFile`) and resolves once it answers its health check. */
export async function startLocalEtcd(bin: string, dataDir: string, logFile: string): Promise<ChildProcess> {
  const log = openSync(logFile, 'a')
  const child = spawn(
    bin,
    [
      '--name', 'local', '--data-dir', dataDir,
      '--listen-client-urls', LOCAL_ETCD.client, '--advertise-client-urls', LOCAL_ETCD.client,
      '--listen-peer-urls', LOCAL_ETCD.peer, '--initial-advertise-peer-urls', LOCAL_ETCD.peer,
      '--initial-cluster', `local=${LOCAL_ETCD.peer}`,
      '--logger', 'zap', '--log-outputs', 'stderr',
    ],
    { stdio: ['ignore', log, log] },
  )
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`etcd exited with code ${child.exitCode} (see ${logFile})`)
    try {
      const res = await fetch(`${LOCAL_ETCD.client}/health`)
      if (((await res.json()) as { health?: string }).health === 'true') return child
    } catch {
      // not serving yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  child.kill('SIGTERM')
  throw new Error(`etcd did not become healthy in 20 s (see ${logFile})`)
}
