import { Agent } from 'undici'
import type { IncomingHttpHeaders } from 'node:http'
import { KeepError } from '../shared/errors.js'
import { bodyOf, type Block } from './blocks.js'

/** How long a phase runs: until `seconds` have passed or `maxBytes` have moved, whichever comes first. */
export interface PhaseLimits {
  seconds: number
  maxBytes: number
}

export interface PhaseResult {
  requests: number
  bytes: number
  seconds: number
  requestsPerSecond: number
  /** 10^6 bytes per second. */
  megabytesPerSecond: number
  p50Ms: number
  p99Ms: number
}

/** One request of a phase; resolves to the block bytes it moved. */
export type Job = (worker: number, n: number) => Promise<number>

/** What one run of a phase measured; several runs of the same phase add up with {@link summarize}. */
export interface PhaseSample {
  bytes: number
  seconds: number
  /** Milliseconds, one per completed request. */
  latencies: number[]
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!
}

/**
 * Runs `concurrency` workers, each issuing `job` back to back, until the
 * limits are reached; requests in flight at that moment finish and count.
 * The first failed request fails the phase (a benchmark with errors measures
 * nothing worth reporting). `first` numbers the jobs on from an earlier run.
 */
export async function runPhase(concurrency: number, limits: PhaseLimits, job: Job, first = 0): Promise<PhaseSample> {
  const latencies: number[] = []
  let bytes = 0
  let issued = first
  let stop = false
  const start = performance.now()
  const worker = async (w: number): Promise<void> => {
    while (!stop) {
      const t0 = performance.now()
      // Not `bytes += await …`: that reads `bytes` before the await and loses the other workers' updates.
      const moved = await job(w, issued++)
      bytes += moved
      const t1 = performance.now()
      latencies.push(t1 - t0)
      if ((t1 - start) / 1000 >= limits.seconds || bytes >= limits.maxBytes) stop = true
    }
  }
  try {
    await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)))
  } catch (err) {
    stop = true
    throw err
  }
  return { bytes, seconds: (performance.now() - start) / 1000, latencies }
}

/** Totals over the runs of one phase: rates over the summed time, percentiles over every request. */
export function summarize(samples: PhaseSample[]): PhaseResult {
  const latencies = samples.flatMap((s) => s.latencies).sort((a, b) => a - b)
  const bytes = samples.reduce((n, s) => n + s.bytes, 0)
  const seconds = samples.reduce((n, s) => n + s.seconds, 0)
  return {
    requests: latencies.length,
    bytes,
    seconds,
    requestsPerSecond: latencies.length / seconds,
    megabytesPerSecond: bytes / 1e6 / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  }
}

/** The one undici Agent of the load generator: keep-alive, enough sockets for every worker. */
export function createLoadAgent(): Agent {
  return new Agent({ connections: 256, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000, headersTimeout: 120_000, bodyTimeout: 120_000 })
}

function authHeaders(token: string | undefined): IncomingHttpHeaders {
  return token ? { authorization: `Bearer ${token}` } : {}
}

async function failure(what: string, statusCode: number, body: { text(): Promise<string> }): Promise<KeepError> {
  const text = (await body.text().catch(() => '')).trim().slice(0, 200)
  return new KeepError('KEEP_INTERNAL', `${what}: HTTP ${statusCode} ${text}`)
}

/** PUT /<hash> with the block; resolves to the locator the server answered (signed when `token` is given). */
export async function putBlock(agent: Agent, origin: string, block: Block, token?: string): Promise<string> {
  const res = await agent.request({
    origin,
    path: `/${block.hash}`,
    method: 'PUT',
    headers: { 'content-length': String(block.size), 'content-type': 'application/octet-stream', ...authHeaders(token) },
    body: bodyOf(block),
  })
  if (res.statusCode !== 200) throw await failure(`PUT ${origin}/${block.hash}`, res.statusCode, res.body)
  return (await res.body.text()).trim()
}

/** GET /<locator>; reads the whole body and checks its length. Resolves to the bytes received. */
export async function getBlock(agent: Agent, origin: string, locator: string, size: number, token?: string): Promise<number> {
  const res = await agent.request({ origin, path: `/${locator}`, method: 'GET', headers: authHeaders(token) })
  if (res.statusCode !== 200) throw await failure(`GET ${origin}/${locator.slice(0, 40)}`, res.statusCode, res.body)
  let n = 0
  for await (const chunk of res.body) n += (chunk as Buffer).length
  if (n !== size) throw new KeepError('KEEP_INTERNAL', `GET ${origin}/${locator.slice(0, 40)}: ${n} bytes, expected ${size}`)
  return n
}

/** GET with the admin token, body as a Buffer (index, pull status). */
export async function adminGet(agent: Agent, origin: string, path: string, token: string): Promise<Buffer> {
  const res = await agent.request({ origin, path, method: 'GET', headers: authHeaders(token) })
  if (res.statusCode !== 200) throw await failure(`GET ${origin}${path}`, res.statusCode, res.body)
  return Buffer.from(await res.body.arrayBuffer())
}
