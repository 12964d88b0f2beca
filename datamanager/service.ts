import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { requireToken, tokenFromAuthorization } from '../shared/auth.js'
import { requireDatamanager } from '../shared/config.js'
import { isKeepError, KeepError } from '../shared/errors.js'
import type { Logger } from '../shared/logger.js'
import { DatamanagerMetrics } from './metrics.js'
import { createMembershipTrigger } from './membership-trigger.js'
import { runDatamanager, type RunOptions, type RunResult } from './run.js'

export interface ServiceOptions extends Omit<RunOptions, 'dryRun'> {
  /** Stops the service: the run in progress finishes, no new one starts. */
  signal: AbortSignal
  /** Waits `ms` between runs, resolving early when `signal` aborts (a stop, or a run requested); injected by tests. */
  wait?(ms: number, signal: AbortSignal): Promise<void>
  /** Called after every run (tests count periods with it). */
  onRun?(result: RunResult | undefined): void
}

export interface RunningService {
  /** Where /metrics and /_health/ping listen (`datamanager.listen`), if set. */
  address: { host: string; port: number } | undefined
  metrics: DatamanagerMetrics
  /**
   * Starts a run now (SIGUSR1, as keep-balance's): during the wait, the
   * wait ends; during a run, the run goes on and one more starts as soon as
   * it ends (requests during one run count once). The next period counts
   * from the end of that run.
   */
  runNow(): void
  /** Resolves once the loop has stopped and the HTTP server is closed. */
  done: Promise<void>
}

/**
 * The datamanager as a service: one run every `datamanager.period` until
 * `signal` aborts, sooner when asked ({@link RunningService.runNow}, on
 * SIGUSR1), and with etcd also `membershipSettle` after a keepstore came or
 * went. A refused run, a held lock, even a crashed run is logged and the
 * next period tries again. When `datamanager.listen` is set, serves
 * `/metrics` and `/_health/ping`, both guarded by `cluster.managementToken`
 * as the keepstore's are.
 */
export async function startService(options: ServiceOptions): Promise<RunningService> {
  const dm = requireDatamanager(options.config)
  const metrics = new DatamanagerMetrics()
  const server = dm.listen === undefined ? undefined : await listen(dm.listen, options, metrics)
  const address = server === undefined ? undefined : { host: dm.listen!.host, port: (server.address() as AddressInfo).port }
  if (address !== undefined) options.logger.info(address, 'datamanager metrics listening')
  const wait = options.wait ?? waitFor
  // With etcd: a keepstore coming or going starts a run after membershipSettle, not after the period.
  const trigger = options.membership && createMembershipTrigger(options.membership, dm.membershipSettleMs, options.logger)
  let running = false
  let queued = false
  let wake: AbortController | undefined
  const runNow = (): void => {
    if (running) {
      if (!queued) options.logger.info('run requested during a run: another starts when this one ends')
    } else {
      options.logger.info('run requested: starting now')
    }
    queued = true
    wake?.abort()
  }
  const done = (async () => {
    try {
      while (!options.signal.aborted) {
        running = true
        queued = false
        let result: RunResult | undefined
        trigger?.runStarting()
        try {
          result = await runDatamanager(options)
          if (result.report !== undefined) metrics.observe(result.report)
          else metrics.observeLocked()
        } catch (err) {
          options.logger.error({ err }, `datamanager run failed: ${(err as Error).message}`)
        }
        running = false
        options.onRun?.(result)
        if (options.signal.aborted) break
        if (queued) continue
        options.logger.info({ periodMs: dm.periodMs }, `next run in ${dm.periodMs / 1000} s, or on SIGUSR1`)
        wake = new AbortController()
        const signals = [options.signal, wake.signal]
        if (trigger) signals.push(trigger.next())
        await wait(dm.periodMs, AbortSignal.any(signals))
        wake = undefined
      }
    } finally {
      trigger?.close()
      if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })()
  return { address, metrics, runNow, done }
}

async function waitFor(ms: number, signal: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch(() => {})
}

async function listen(
  at: { host: string; port: number },
  options: ServiceOptions,
  metrics: DatamanagerMetrics,
): Promise<http.Server> {
  const managementToken = options.config.cluster.managementToken
  const server = http.createServer((req, res) => {
    void handle(req, res, managementToken, metrics, options.logger)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new KeepError('KEEP_CONFIG', `config: datamanager.listen: cannot listen on ${at.host}:${at.port}: ${err.code ?? err.message}`)),
    )
    server.listen(at.port, at.host, () => resolve())
  })
  return server
}

async function handle(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  managementToken: string | undefined,
  metrics: DatamanagerMetrics,
  logger: Logger,
): Promise<void> {
  try {
    const route = `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`
    if (route !== 'GET /metrics' && route !== 'GET /_health/ping') throw new KeepError('KEEP_BAD_REQUEST', 'Bad Request')
    requireToken(tokenFromAuthorization(req.headers.authorization), managementToken)
    if (route === 'GET /metrics') {
      const body = await metrics.registry.metrics()
      res.writeHead(200, { 'Content-Type': metrics.registry.contentType })
      res.end(body)
    } else {
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.end('{"health":"OK"}')
    }
  } catch (err) {
    const status = isKeepError(err) ? err.status : 500
    if (status === 500) logger.error({ err }, 'metrics request failed')
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' })
    res.end(`${isKeepError(err) ? err.message : 'internal error'}\n`)
  }
}
