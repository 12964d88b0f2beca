import { Writable } from 'node:stream'
import { request } from 'undici'
import type { Test } from 'tap'
import { parseConfig, type Config } from '../../shared/config.js'
import { ADMIN_TOKEN, clusterConfig, clusterDoc, MANAGEMENT_TOKEN, SIGNING_KEY, type ClusterOptions, type VolumeSpec } from './cluster-config.js'
import { createLogger, type Logger } from '../../shared/logger.js'
import { startKeepstore, type RunningKeepstore } from '../../keepstore/server.js'

import { freePorts } from '../../shared/free-ports.js'
export { freePorts, ADMIN_TOKEN, MANAGEMENT_TOKEN, SIGNING_KEY, clusterConfig, clusterDoc, type ClusterOptions, type VolumeSpec }

export function captureLogger(sink: object[]): Logger {
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) sink.push(JSON.parse(line) as object)
      cb()
    },
  })
  return createLogger({ level: 'debug', destination })
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
