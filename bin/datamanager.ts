import { Command } from 'commander'
import { loadConfig, requireDatamanager } from '../shared/config.js'
import { createLogger } from '../shared/logger.js'
import { runMain, untilSignal, parseArgs, EXIT } from '../shared/cli.js'
import { KeepstoreClient } from '../shared/keepstore-client.js'
import { createCoordination } from '../datamanager/coordination.js'
import { progressFor } from '../datamanager/progress.js'
import { runDatamanager } from '../datamanager/run.js'
import { startService } from '../datamanager/service.js'

// SIGUSR1 starts a run in service mode (as keep-balance's). Listening from the start also keeps
// Node from opening its inspector on SIGUSR1, which it does when no listener is installed.
let onRunRequest: () => void = () => process.stderr.write('datamanager: SIGUSR1 ignored (not running as a service)\n')
process.on('SIGUSR1', () => onRunRequest())

await runMain(async () => {
  const program = new Command('datamanager')
    .description('Enforce replication and collect garbage: send every keepstore its pull and trash lists')
    .requiredOption('--config <file>', 'cluster config file (YAML or JSON)', process.env.KEEP_CONFIG)
    .option('--once', 'one run, then exit (cron); default: a run every datamanager.period', false)
    .option('--dry-run', 'compute and report, send nothing (implies --once)', false)
    .option('--force', 'accept a drop of collections or referenced blocks beyond 10 %', false)
    .option('--full', 'read every index and the collections in full, reusing nothing from the last committed run', false)
    .option('--log-level <level>', 'pino log level', process.env.LOG_LEVEL ?? 'info')
    .option('--pretty', 'human-readable logs', false)
  const opts = parseArgs<{ config: string; once: boolean; dryRun: boolean; force: boolean; full: boolean; logLevel: string; pretty: boolean }>(program)
  if (typeof opts === 'number') return opts
  const config = await loadConfig(opts.config)
  const dm = requireDatamanager(config)
  const logger = createLogger({ level: opts.logLevel, pretty: opts.pretty, name: 'datamanager' })
  const client = new KeepstoreClient({ token: config.cluster.systemRootToken, headersTimeoutMs: 120_000, bodyTimeoutMs: 300_000 })
  // With etcd: one run cluster-wide (a lease-backed lock whose revision fences the lists) and live membership.
  const coordination = await createCoordination(config, logger)
  const { lock, membership } = coordination
  const common = { config, client, lock, logger, force: opts.force, full: opts.full, progress: progressFor(), ...(membership ? { membership } : {}) }
  try {
    if (opts.once || opts.dryRun) {
      const result = await runDatamanager({ ...common, dryRun: opts.dryRun })
      if (result.exitCode === EXIT.locked) process.stderr.write(`datamanager: ${lockedReason(result.report?.outcome, config.cluster.etcd !== undefined)} ${lock.description}\n`)
      return result.exitCode
    }
    const stop = new AbortController()
    const service = await startService({ ...common, signal: stop.signal })
    onRunRequest = () => {
      logger.info({ signal: 'SIGUSR1' }, 'SIGUSR1')
      service.runNow()
    }
    logger.info({ period: dm.periodMs / 1000 }, 'datamanager service started: a run every period and on SIGUSR1')
    void untilSignal().then((signal) => {
      logger.info({ signal }, 'stopping after the current run')
      stop.abort()
    })
    await service.done
    return EXIT.ok
  } finally {
    await coordination.close()
    await client.close()
  }
})

/** Exit 3 means this run did not hold the lock to the end; the log says which of these it was. */
function lockedReason(outcome: string | undefined, etcd: boolean): string {
  if (outcome === 'fenced') return 'the lock was lost midway, or a newer holder fenced this run out:'
  return etcd ? 'another instance holds the lock, or etcd is unreachable:' : 'another instance holds the lock'
}
