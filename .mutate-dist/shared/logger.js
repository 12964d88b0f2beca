import { pino } from 'pino';
import pinoPretty from 'pino-pretty';
const CENSOR = '[redacted]';
/**
 * Secrets never reach a log line (DESIGN §4): the Authorization header,
 * tokens, signatures, and the secrets of a logged cluster config. Paths are
 * explicit, with one wildcard: each wildcard path costs about 1.5 µs per
 * line (measured), and a request line is written per GET.
 */
const REDACT_PATHS = [
    'req.headers.authorization',
    'request.headers.authorization',
    'headers.authorization',
    'authorization',
    'token',
    '*.token',
    'signature',
    'systemRootToken',
    'managementToken',
    'blobSigningKey',
    'cluster.systemRootToken',
    'cluster.managementToken',
    'cluster.blobSigningKey',
    'config.cluster.systemRootToken',
    'config.cluster.managementToken',
    'config.cluster.blobSigningKey',
];
/**
 * pino JSON logger. Pretty output uses pino-pretty as a plain stream, never
 * a transport: a transport's worker thread outlives tests and short CLI runs.
 */
export function createLogger(options = {}) {
    const config = {
        level: options.level ?? 'info',
        redact: { paths: REDACT_PATHS, censor: CENSOR },
    };
    if (options.name !== undefined)
        config.name = options.name;
    const destination = options.destination;
    if (options.pretty === true) {
        const pretty = destination === undefined
            ? pinoPretty({ sync: true })
            : pinoPretty({ destination, colorize: false });
        return pino(config, pretty);
    }
    return destination === undefined ? pino(config) : pino(config, destination);
}
/** A logger that writes nothing: the default for tests and library callers without one. */
export function silentLogger() {
    return pino({ level: 'silent' });
}
const A_HINT_IN_TEXT_RE = /\+A[^+?#/\s]*/g;
/**
 * `text` (a request path, a locator) with every `+A…` signature hint
 * replaced, so a URL can be logged: a signature is a read permission.
 */
export function redactSignatures(text) {
    return text.includes('+A') ? text.replace(A_HINT_IN_TEXT_RE, `+A${CENSOR}`) : text;
}
//# sourceMappingURL=logger.js.map