import http from 'node:http'
import https from 'node:https'
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { KeepError } from '../shared/errors.js'
import { selectKeepstore, keepstoreByOrigin, type Config, type KeepstoreConfig } from '../shared/config.js'
import { createLogger, type Logger } from '../shared/logger.js'
import { KeepstoreClient } from '../shared/keepstore-client.js'
import { createVolume } from './volumes/create-volume.js'
import type { FaultHook } from './volumes/directory-fs.js'
import { MAX_BLOCK_SIZE } from './volumes/volume.js'
import { Mount } from './mount.js'
import { Keepstore } from './keepstore.js'
import { KeepstoreMetrics, type WorklistCounters } from './metrics.js'
import { openStateDb, type StateDb } from './state-db.js'
import { createWorklists, type WorklistSet } from './worklists.js'
import { startTrashEmptier, type TrashEmptier } from './trash-emptier.js'
import { Scrubber, type ScrubClock, type ScrubReport } from './scrubber.js'
import { createApp } from './http/app.js'
import { Slots } from './slots.js'
import { handleClientError } from './http/client-error.js'
import type { AppDeps } from './http/context.js'
import { startClusterMembership, type ClusterMembership } from './registration.js'

export const VERSION = '0.1.0'

export interface StartOptions {
  /** Which keepstore of the config to serve (may be omitted when there is one). */
  uuid?: string
  /** Test seam: the directory volumes' fault hook (ENOSPC, EIO); see {@link FaultHook}. */
  faults?: FaultHook
  logger?: Logger
  /** Milliseconds since the epoch (signatures, trash ages). */
  now?: () => number
  /** Overrides the listen port from the config (tests use 0). */
  port?: number
  /** Bounded wait for in-flight requests on close(). */
  shutdownGraceMs?: number
  /** The scrubber's clock (tests pace it without waiting). */
  scrubClock?: ScrubClock
  /** Wraps the opened state database (tests inject faults such as a full disk). */
  wrapStateDb?: (db: StateDb) => StateDb
  /** How long a pull waits for a source's response headers (default undici's 60 s); tests shorten it. */
  pullHeadersTimeoutMs?: number
}

export interface RunningKeepstore {
  url: string
  port: number
  config: KeepstoreConfig
  keepstore: Keepstore
  worklists: WorklistSet
  emptier: TrashEmptier
  scrubber: Scrubber
  metrics: KeepstoreMetrics
  /** The block-write pool (PUTs and pull writes). */
  writes: Slots
  /** With `cluster.etcd`: this keepstore's registration and its view of the others. */
  membership: ClusterMembership | undefined
  close(): Promise<void>
}

/** Opens volumes and state, resumes worklists, and listens. Any start-up fault is a KeepError (KEEP_CONFIG for operator mistakes). */
export async function startKeepstore(config: Config, options: StartOptions = {}): Promise<RunningKeepstore> {
  const ksConfig = selectKeepstore(config, options.uuid)
  const logger = (options.logger ?? createLogger()).child({ keepstore: ksConfig.uuid })
  if (!config.cluster.systemRootToken) throw new KeepError('KEEP_CONFIG', 'config: cluster.systemRootToken: required')
  const now = options.now ?? Date.now
  const nowNs = (): bigint => BigInt(now()) * 1_000_000n
  const mounts: Mount[] = []
  for (const v of ksConfig.volumes) {
    const volume = createVolume(v, {
      ...(options.now ? { now: nowNs } : {}),
      ...(options.faults ? { faults: options.faults } : {}),
      indexRescanIntervalMs: ksConfig.indexRescanIntervalMs,
    })
    await volume.open()
    mounts.push(new Mount({ volume, replication: v.replication, storageClasses: v.storageClasses, priority: v.priority, readOnly: v.readOnly, minFreeSpace: ksConfig.minFreeSpace, now }))
  }
  const keepstore = new Keepstore({ uuid: ksConfig.uuid, mounts, cluster: config.cluster, logger, now })
  let worklists: WorklistSet | undefined
  // Block writes (PUTs and pull writes) have their own pool, so reads never wait behind them.
  const writes = new Slots(ksConfig.maxConcurrentWrites)
  const requests = new Slots(ksConfig.maxConcurrentRequests)
  const metrics = new KeepstoreMetrics({
    mounts: () => keepstore.mounts,
    worklists: (): Record<string, WorklistCounters> => (worklists ? { pull: worklists.pull.counts(), trash: worklists.trash.counts() } : {}),
    queues: () => ({ api: requests, write: writes }),
    version: VERSION,
  })
  const opened = await openStateDb(ksConfig.stateDir)
  const db = options.wrapStateDb ? options.wrapStateDb(opened) : opened
  const client = new KeepstoreClient(options.pullHeadersTimeoutMs !== undefined ? { headersTimeoutMs: options.pullHeadersTimeoutMs } : {})
  // Started once listening (below); until then no source is known to be down.
  let membership: ClusterMembership | undefined
  worklists = await createWorklists({
    keepstore,
    db,
    client,
    metrics,
    logger,
    writes,
    pullConcurrency: ksConfig.pullConcurrency,
    trashConcurrency: ksConfig.trashConcurrency,
    isKnownServer: (url) => keepstoreByOrigin(config, url) !== undefined,
    isDown: (url) => membership?.view.stateOf(url) === 'absent',
  })
  const emptier = startTrashEmptier(keepstore, config.cluster.blobTrashCheckIntervalMs, logger, (n) => metrics.trashEmptied.inc(n))
  const scrubber = new Scrubber({
    mounts: () => keepstore.mounts,
    rateMBps: ksConfig.scrubRate,
    logger,
    metrics,
    ...(options.scrubClock ? { clock: options.scrubClock } : {}),
  })
  scrubber.start()

  const deps: AppDeps = { keepstore, worklists, metrics, logger, version: VERSION, scrubber, bodyIdleTimeoutMs: ksConfig.bodyIdleTimeoutMs }
  const app = createApp(deps, { requests, writes })
  const handler = app.callback()
  // Node checks header/request timeouts every connectionsCheckingInterval (30 s by default).
  const serverOptions = { connectionsCheckingInterval: Math.max(100, Math.min(1000, ksConfig.headerTimeoutMs / 2)) }
  const server = ksConfig.tls
    ? https.createServer({ ...serverOptions, cert: await readFile(ksConfig.tls.certificate), key: await readFile(ksConfig.tls.key) }, handler)
    : http.createServer(serverOptions, handler)
  server.headersTimeout = ksConfig.headerTimeoutMs
  server.requestTimeout = ksConfig.requestTimeoutMs
  server.keepAliveTimeout = 65_000
  // `Expect: 100-continue`: refuse an oversized block before the client sends it.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (Number(req.headers['content-length'] ?? 0) > MAX_BLOCK_SIZE) {
      res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close' })
      res.end('block exceeds 64 MiB\n')
      return
    }
    res.writeContinue()
    server.emit('request', req, res)
  })
  server.on('clientError', (err: Error, socket) => handleClientError(deps, err, socket as import('node:net').Socket))

  const port = options.port ?? ksConfig.listen.port
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new KeepError('KEEP_CONFIG', `keepstore ${ksConfig.uuid}: cannot listen on ${ksConfig.listen.host}:${port}: ${err.code ?? err.message}`)),
    )
    server.listen(port, ksConfig.listen.host, () => resolve())
  })
  const actual = (server.address() as AddressInfo).port
  const url = `${ksConfig.tls ? 'https' : 'http'}://${ksConfig.listen.host.includes(':') ? `[${ksConfig.listen.host}]` : ksConfig.listen.host}:${actual}`
  logger.info({ url, volumes: mounts.map((m) => m.uuid) }, 'keepstore listening')
  if (config.cluster.etcd !== undefined) {
    membership = await startClusterMembership(config, ksConfig, { logger, version: VERSION })
    deps.membership = membership.view
  }

  let closing: Promise<void> | undefined
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const grace = options.shutdownGraceMs ?? 10_000
      // Deregistered first: the others stop pulling from it at once, not after the lease's TTL.
      await membership?.close()
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      const timer = setTimeout(() => server.closeAllConnections(), grace)
      await stopped
      clearTimeout(timer)
      await emptier.stop()
      await scrubber.stop()
      await worklists!.close()
      await client.close()
      await db.close()
      await keepstore.close()
      logger.info('keepstore stopped')
    })())
  return { url, port: actual, config: ksConfig, keepstore, worklists, emptier, scrubber, metrics, writes, membership, close }
}

/**
 * `bin/keepstore --scrub-once`: opens this keepstore's volumes (no HTTP, no
 * worklists) and scrubs each once, at scrubRate when one is set, else as fast
 * as the disks go. Meant for a stopped keepstore: the per-hash lock that
 * keeps a quarantine from racing a PUT lives in one process.
 */
export async function scrubKeepstoreOnce(config: Config, options: { uuid?: string; logger?: Logger; scrubClock?: ScrubClock } = {}): Promise<ScrubReport> {
  const ksConfig = selectKeepstore(config, options.uuid)
  const logger = (options.logger ?? createLogger()).child({ keepstore: ksConfig.uuid })
  const mounts: Mount[] = []
  try {
    for (const v of ksConfig.volumes) {
      const volume = createVolume(v)
      await volume.open()
      mounts.push(new Mount({ volume, replication: v.replication, storageClasses: v.storageClasses, priority: v.priority, readOnly: v.readOnly, minFreeSpace: ksConfig.minFreeSpace }))
    }
    const scrubber = new Scrubber({ mounts: () => mounts, rateMBps: ksConfig.scrubRate, logger, ...(options.scrubClock ? { clock: options.scrubClock } : {}) })
    return await scrubber.scrubOnce()
  } finally {
    await Promise.allSettled(mounts.map((m) => m.volume.close()))
  }
}
