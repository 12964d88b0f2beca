import { Command } from 'commander'
import { loadConfig } from '../shared/config.js'
import { createLogger } from '../shared/logger.js'
import { runMain, untilSignal, parseArgs, EXIT } from '../shared/cli.js'
import { KeepError } from '../shared/errors.js'
import { scrubKeepstoreOnce, startKeepstore, VERSION } from '../keepstore/server.js'
import type { ScrubReport } from '../keepstore/scrubber.js'

/** `--scrub-once` exit codes besides 0 (every block verified): see the --help text. */
const EXIT_SCRUB = { incomplete: 1, corrupt: 4 } as const

await runMain(async () => {
  const program = new Command('keepstore')
    .description('Serve blocks from this keepstore\'s volumes (Keep protocol)')
    .requiredOption('--config <file>', 'cluster config file (YAML or JSON)', process.env.KEEP_CONFIG)
    .option('--uuid <uuid>', 'which keepstore of the config to serve (optional when there is one)')
    .option(
      '--scrub-once',
      'verify every block of every volume once (at scrubRate, unpaced when 0), quarantine corrupt copies, print a summary ' +
        'and exit without serving: 0 all good, 4 corruption found (quarantined unless read-only), 1 some blocks could not be checked. ' +
        'Run it while this keepstore is stopped',
      false,
    )
    .option('--log-level <level>', 'pino log level', process.env.LOG_LEVEL ?? 'info')
    .option('--pretty', 'human-readable logs', false)
    .version(VERSION)
  const opts = parseArgs<{ config: string; uuid?: string; scrubOnce: boolean; logLevel: string; pretty: boolean }>(program)
  if (typeof opts === 'number') return opts
  if (!opts.config) throw new KeepError('KEEP_CONFIG', 'keepstore: --config FILE is required')
  const config = await loadConfig(opts.config)
  const logger = createLogger({ level: opts.logLevel, pretty: opts.pretty })
  const select = opts.uuid ? { uuid: opts.uuid } : {}
  if (opts.scrubOnce) {
    const report = await scrubKeepstoreOnce(config, { ...select, logger })
    process.stdout.write(`${summary(report)}\n`)
    if (report.corrupt_found > 0) return EXIT_SCRUB.corrupt
    return report.errors > 0 || !report.complete ? EXIT_SCRUB.incomplete : EXIT.ok
  }
  const running = await startKeepstore(config, { ...select, logger })
  const signal = await untilSignal()
  logger.info({ signal }, 'shutting down')
  await running.close()
  return EXIT.ok
})

function summary(r: ScrubReport): string {
  return (
    `scrub: ${r.volumes} volume(s), ${r.blocks_checked} blocks checked, ${r.bytes_read} bytes read, ` +
    `${r.corrupt_found} corrupt, ${r.quarantined} quarantined, ${r.errors} errors`
  )
}
