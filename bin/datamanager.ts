import { Command } from 'commander'
import { loadConfig, requireDatamanager } from '../shared/config.js'
import { createLogger } from '../shared/logger.js'
import { runMain, untilSignal, parseArgs, EXIT } from '../shared/cli.js'
import { KeepstoreClient } from '../shared/keepstore-client.js'
import { combineLocks, createFileLock } from '../datamanager/lock.js'
import { createEtcdLock } from '../datamanager/etcd-lock.js'
import { createEtcdClient, etcdKeys } from '../shared/etcd-client.js'
import { watchMembership } from '../shared/membership.js'
import { progressFor } from '../datamanager/progress.js'
import { runDatamanager } from '../datamanager/run.js'
import { startService } from '../datamanager/service.js'

await runMain(async () => {
  const program = new Command('datamanager')
    .description('Enforce replication and collect garbage: send every keepstore its pull and trash lists')
    .requiredOption('--config <file>', 'cluster config file (YAML or JSON)', process.env.KEEP_CONFIG)
    .option('--once', 'one run, then exit (cron); default: a run every datamanager.period', false)
    .option('--dry-run', 'compute and report, send nothing (implies --once)', false)
    .option('--force', 'accept a drop of collections or referenced blocks beyond 10 %', false)
    .option('--log-level <level>', 'pino log level', process.env.LOG_LEVEL ?? 'info')
    .option('--pretty', 'human-readable logs', false)
  const opts = parseArgs<{ config: string; once: boolean; dryRun: boolean; force: boolean; logLevel: string; pretty: boolean }>(program)
  if (typeof opts === 'number') return opts
  const config = await loadConfig(opts.config)
  const dm = requireDatamanager(config)
  const logger = createLogger({ level: opts.logLevel, pretty: opts.pretty, name: 'datamanager' })
  const client = new KeepstoreClient({ token: config.cluster.systemRootToken, headersTimeoutMs: 120_000, bodyTimeoutMs: 300_000 })
  const fileLock = createFileLock(dm.stateDir, {
    onCompromised: (err) => logger.error({ err }, 'datamanager lock lost while held'),
  })
  // With etcd: one run cluster-wide (a lease-backed lock whose revision fences the lists) and live membership.
  const etcd = config.cluster.etcd
  const etcdClient = etcd && (await createEtcdClient(etcd))
  const lock = etcd && etcdClient ? combineLocks(fileLock, createEtcdLock(etcdClient, { key: etcdKeys.lock(etcd.prefix), ttlSeconds: etcd.leaseTTLSeconds, logger })) : fileLock
  const membership = etcdClient && watchMembership(etcdClient, config, { logger })
  // A run plans with the first listing in; if etcd does not answer, the lock will not be had either.
  await membership?.ready(5000)
  const common = { config, client, lock, logger, force: opts.force, progress: progressFor(), ...(membership ? { membership } : {}) }
  try {
    if (opts.once || opts.dryRun) {
      const result = await runDatamanager({ ...common, dryRun: opts.dryRun })
      if (result.exitCode === EXIT.locked) process.stderr.write(`datamanager: ${lockedReason(result.report?.outcome, etcd !== undefined)} ${lock.description}\n`)
      return result.exitCode
    }
    const stop = new AbortController()
    const service = await startService({ ...common, signal: stop.signal })
    void untilSignal().then((signal) => {
      logger.info({ signal }, 'stopping after the current run')
      stop.abort()
    })
    await service.done
    return EXIT.ok
  } finally {
    await membership?.close()
    etcdClient?.close()
    await client.close()
  }
})

/** Exit 3 means this run did not hold the lock to the end; the log says which of these it was. */
function lockedReason(outcome: string | undefined, etcd: boolean): string {
  if (outcome === 'fenced') return 'the lock was lost midway, or a newer holder fenced this run out:'
  return etcd ? 'another instance holds the lock, or etcd is unreachable:' : 'another instance holds the lock'
}
