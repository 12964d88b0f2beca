import { Command } from 'commander';
import { loadConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { runMain, untilSignal, parseArgs, EXIT } from '../shared/cli.js';
import { KeepError } from '../shared/errors.js';
import { startKeepstore, VERSION } from '../keepstore/server.js';
await runMain(async () => {
    const program = new Command('keepstore')
        .description('Serve blocks from this keepstore\'s volumes (Keep protocol)')
        .requiredOption('--config <file>', 'cluster config file (YAML or JSON)', process.env.KEEP_CONFIG)
        .option('--uuid <uuid>', 'which keepstore of the config to serve (optional when there is one)')
        .option('--log-level <level>', 'pino log level', process.env.LOG_LEVEL ?? 'info')
        .option('--pretty', 'human-readable logs', false)
        .version(VERSION);
    const opts = parseArgs(program);
    if (typeof opts === 'number')
        return opts;
    if (!opts.config)
        throw new KeepError('KEEP_CONFIG', 'keepstore: --config FILE is required');
    const config = await loadConfig(opts.config);
    const logger = createLogger({ level: opts.logLevel, pretty: opts.pretty });
    const running = await startKeepstore(config, { ...(opts.uuid ? { uuid: opts.uuid } : {}), logger });
    const signal = await untilSignal();
    logger.info({ signal }, 'shutting down');
    await running.close();
    return EXIT.ok;
});
//# sourceMappingURL=keepstore.js.map