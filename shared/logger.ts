import { pino, type DestinationStream, type LoggerOptions as PinoOptions } from 'pino'
import { createRequire } from 'node:module'

export type Logger = import('pino').Logger

export interface LoggerOptions {
  /** pino level name (`info` unless given; `silent` in tests). */
  level?: string
  /** Where JSON lines go: stdout unless given; tests pass a stream they read back. */
  destination?: NodeJS.WritableStream | DestinationStream
  /** Human-readable lines for a terminal, via pino-pretty as a stream in this thread. */
  pretty?: boolean
  name?: string
}

const CENSOR = '[redacted]'

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
]

/**
 * pino JSON logger. Pretty output uses pino-pretty as a plain stream, never
 * a transport: a transport's worker thread outlives tests and short CLI runs.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const config: PinoOptions = {
    level: options.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    // Signatures can ride in any field (a path, an error message, a list item,
    // the message itself): the finished line is scrubbed once, whatever carries them.
    hooks: { streamWrite: redactSignatures },
  }
  if (options.name !== undefined) config.name = options.name
  const destination = options.destination as DestinationStream | undefined
  if (options.pretty === true) {
    // Loaded only when asked for: every daemon and CLI start would otherwise pay for it.
    const pinoPretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty')
    const pretty = destination === undefined
      ? pinoPretty({ sync: true })
      : pinoPretty({ destination, colorize: false })
    return pino(config, pretty)
  }
  return destination === undefined ? pino(config) : pino(config, destination)
}

/** A logger that writes nothing: the default for tests and library callers without one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}

/**
 * An `A` hint, whatever its case, raw or percent-encoded (`%2BA…`), up to the
 * next character that cannot be part of it in a URL or a JSON string.
 */
const A_HINT_IN_TEXT_RE = /((?:\+|%2b)a)[^+?#/\s"\\&,;%]*/gi

/**
 * `text` (a request path, a locator, a whole JSON log line) with every `+A…`
 * signature hint replaced: a signature is a read permission.
 */
export function redactSignatures(text: string): string {
  return text.replace(A_HINT_IN_TEXT_RE, `$1${CENSOR}`)
}
