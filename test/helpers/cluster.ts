import path from 'node:path'
import { Writable } from 'node:stream'
import { request } from 'undici'
import type { Test } from 'tap'
import { parseConfig, type Config } from '../../shared/config.js'
import { createLogger, type Logger } from '../../shared/logger.js'
import { startKeepstore, type RunningKeepstore } from '../../keepstore/server.js'

export const ADMIN_TOKEN = 'admin-token-0123456789abcdefghijklmnopqrstuvwxyz'
export const MANAGEMENT_TOKEN = 'management-token-0123456789abcdefghijklmnop'
export const SIGNING_KEY = 'signing-key-0123456789abcdefghijklmnopqrstuvwxyz'

import { freePorts } from '../../shared/free-ports.js'
export { freePorts }

export interface ClusterOptions {
  keepstores?: number
  /** Volumes per keepstore: 'memory' or 'directory'; default one memory volume. A function gives keepstore i its own. */
  volumes?: VolumeSpec[] | ((keepstore: number) => VolumeSpec[])
  /** Extra cluster keys (YAML values), e.g. { blobSigningTTL: '1h', blobTrash: false }. */
  cluster?: Record<string, unknown>
  /** Extra keys per keepstore. */
  keepstore?: Record<string, unknown>
  datamanager?: Record<string, unknown>
  now?: () => number
  /** Log lines land here (JSON objects) when given. */
  logs?: object[]
  /** A pull source's response-headers timeout (default 60 s). */
  pullHeadersTimeoutMs?: number
}

export interface VolumeSpec {
  driver: 'memory' | 'directory'
  readOnly?: boolean
  allowTrashWhenReadOnly?: boolean
  storageClasses?: string[]
  replication?: number
  priority?: number
}

export function captureLogger(sink: object[]): Logger {
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) sink.push(JSON.parse(line) as object)
      cb()
    },
  })
  return createLogger({ level: 'debug', destination })
}

/** The config document (what a config file holds) of a test cluster: programs run as children read it from a file. */
export function clusterDoc(dir: string, ports: number[], options: ClusterOptions = {}): Record<string, unknown> {
  const spec = options.volumes ?? [{ driver: 'memory' as const }]
  const volumesOf = (i: number): VolumeSpec[] => (typeof spec === 'function' ? spec(i) : spec)
  return {
    cluster: {
      id: 'zzzzz',
      systemRootToken: ADMIN_TOKEN,
      managementToken: MANAGEMENT_TOKEN,
      blobSigningKey: SIGNING_KEY,
      ...options.cluster,
    },
    keepstores: ports.map((port, i) => ({
      uuid: `zzzzz-bi6l4-${String(i).padStart(15, '0')}`,
      url: `http://127.0.0.1:${port}`,
      stateDir: path.join(dir, `state${i}`),
      ...options.keepstore,
      volumes: volumesOf(i).map((v, j) => ({
        uuid: `zzzzz-nyw5e-${String(i).padStart(7, '0')}${String(j).padStart(8, '0')}`,
        driver: v.driver,
        ...(v.driver === 'directory' ? { root: path.join(dir, `ks${i}-vol${j}`) } : {}),
        ...(v.readOnly ? { readOnly: true } : {}),
        ...(v.allowTrashWhenReadOnly ? { allowTrashWhenReadOnly: true } : {}),
        ...(v.storageClasses ? { storageClasses: v.storageClasses } : {}),
        ...(v.replication ? { replication: v.replication } : {}),
        ...(v.priority ? { priority: v.priority } : {}),
      })),
    })),
    ...(options.datamanager ? { datamanager: options.datamanager } : {}),
  }
}

export function clusterConfig(dir: string, ports: number[], options: ClusterOptions = {}): Config {
  return parseConfig(JSON.stringify(clusterDoc(dir, ports, options)), { baseDir: dir })
}

export interface TestCluster {
  config: Config
  /** The config as a document: write it to a file for a child process (paths in it are absolute). */
  doc: Record<string, unknown>
  keepstores: RunningKeepstore[]
  urls: string[]
  dir: string
  restart(i: number): Promise<RunningKeepstore>
}

/** Starts N in-process keepstores on loopback ports; stops them at teardown. */
export async function startCluster(t: Test, options: ClusterOptions = {}): Promise<TestCluster> {
  const dir = t.testdir({})
  const { mkdir } = await import('node:fs/promises')
  const n = options.keepstores ?? 1
  const ports = await freePorts(n)
  const doc = clusterDoc(dir, ports, options)
  const config = parseConfig(JSON.stringify(doc), { baseDir: dir })
  for (const ks of config.keepstores) for (const v of ks.volumes) if (v.root) await mkdir(v.root, { recursive: true })
  const logger = options.logs ? captureLogger(options.logs) : createLogger({ level: 'silent' })
  const start = (i: number): Promise<RunningKeepstore> =>
    startKeepstore(config, { uuid: config.keepstores[i]!.uuid, logger, ...(options.now ? { now: options.now } : {}), ...(options.pullHeadersTimeoutMs !== undefined ? { pullHeadersTimeoutMs: options.pullHeadersTimeoutMs } : {}), shutdownGraceMs: 1000 })
  const keepstores: RunningKeepstore[] = []
  for (let i = 0; i < n; i++) keepstores.push(await start(i))
  t.teardown(() => Promise.all(keepstores.map((k) => k.close())))
  return {
    config,
    doc,
    keepstores,
    urls: keepstores.map((k) => k.url),
    dir,
    async restart(i) {
      await keepstores[i]!.close()
      keepstores[i] = await start(i)
      return keepstores[i]!
    },
  }
}

export interface CallResult {
  status: number
  headers: Record<string, string>
  body: Buffer
  text: string
}

/** One HTTP request through real routing; the body is read fully. */
export async function call(
  url: string,
  method: string,
  pathname: string,
  options: { token?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<CallResult> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  const res = await request(new URL(pathname, url), {
    method: method as 'GET',
    headers,
    ...(options.body !== undefined ? { body: options.body } : {}),
  })
  const body = Buffer.from(await res.body.arrayBuffer())
  const flat: Record<string, string> = {}
  for (const [k, v] of Object.entries(res.headers)) flat[k] = Array.isArray(v) ? v.join(', ') : String(v)
  return { status: res.statusCode, headers: flat, body, text: body.toString('utf8') }
}
