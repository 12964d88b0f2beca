import { CommanderError } from 'commander';
import { isKeepError } from './errors.js';
/** Exit codes shared by the programs (PROTOCOL.md §8 for the datamanager). */
export const EXIT = { ok: 0, refused: 1, usage: 2, locked: 3 };
/**
 * Runs a program's main: a config or usage mistake is one line on stderr and
 * exit 2 (no stack trace for a person's mistake); a bug prints its stack.
 */
export async function runMain(main) {
    try {
        const code = await main();
        if (typeof code === 'number')
            process.exitCode = code;
    }
    catch (err) {
        if (isKeepError(err, 'KEEP_CONFIG') || isKeepError(err, 'KEEP_BAD_REQUEST')) {
            process.stderr.write(`${err.message}\n`);
            process.exitCode = EXIT.usage;
        }
        else {
            process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
            process.exitCode = 1;
        }
    }
}
/** Resolves on the first SIGTERM or SIGINT. */
export function untilSignal() {
    return new Promise((resolve) => {
        const on = (sig) => {
            process.off('SIGTERM', on);
            process.off('SIGINT', on);
            resolve(sig);
        };
        process.on('SIGTERM', on);
        process.on('SIGINT', on);
    });
}
/**
 * Parses argv with commander: returns the options, or the exit code when
 * commander already answered (--help → 0, a usage mistake → 2).
 */
export function parseArgs(program) {
    program.exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s) });
    try {
        program.parse();
    }
    catch (err) {
        if (err instanceof CommanderError)
            return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
        throw err;
    }
    return program.opts();
}
//# sourceMappingURL=cli.js.map