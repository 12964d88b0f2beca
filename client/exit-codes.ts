import { isKeepError, type KeepErrorCode } from '../shared/errors.js'

/**
 * Exit codes of `bin/keep` (README, `keep --help`). Scripts branch on them;
 * the one line on stderr says what to do.
 */
export const KEEP_EXIT = {
  ok: 0,
  /** Anything else that failed: a server error, data corrupt on every server, an incomplete index. */
  failed: 1,
  /** Bad arguments, config, locator, manifest line or input file; a list the server found invalid. */
  usage: 2,
  /**
   * No keepstore answered (connection refused, reset, timed out), or one answered 503 busy. `status`:
   * some keepstore did not answer, or, with cluster.etcd, etcd did not answer or a keepstore is down.
   */
  unreachable: 3,
  /** Fewer replicas stored than wanted. */
  insufficientReplicas: 4,
  /** Token refused, signature invalid or expired. */
  permissionDenied: 5,
  /** No keepstore holds the block. */
  notFound: 6,
} as const

const EXIT_OF: Partial<Record<KeepErrorCode, number>> = {
  KEEP_CONFIG: KEEP_EXIT.usage,
  KEEP_BAD_REQUEST: KEEP_EXIT.usage,
  KEEP_INVALID_LOCATOR: KEEP_EXIT.usage,
  KEEP_TOO_LARGE: KEEP_EXIT.usage,
  KEEP_UNAVAILABLE: KEEP_EXIT.unreachable,
  KEEP_INSUFFICIENT_REPLICAS: KEEP_EXIT.insufficientReplicas,
  KEEP_UNAUTHORIZED: KEEP_EXIT.permissionDenied,
  KEEP_FORBIDDEN: KEEP_EXIT.permissionDenied,
  KEEP_INVALID_SIGNATURE: KEEP_EXIT.permissionDenied,
  KEEP_EXPIRED_SIGNATURE: KEEP_EXIT.permissionDenied,
  KEEP_BLOCK_NOT_FOUND: KEEP_EXIT.notFound,
}

/** The exit code for an error the client raised; `undefined` for a bug (not a KeepError). */
export function exitCodeOf(err: unknown): number | undefined {
  if (!isKeepError(err)) return undefined
  return EXIT_OF[err.code] ?? KEEP_EXIT.failed
}

export const EXIT_CODES_HELP = `Exit codes:
  0  done
  1  failed otherwise (a server error, data corrupt on every server, an incomplete index)
  2  usage: bad arguments, config, locator, manifest line or input file; a list the server refused as invalid
  3  unreachable: no keepstore answered (or it was busy: 503); for status: some keepstore did not
     answer, or (with cluster.etcd) etcd did not answer or a keepstore is not registered
  4  not enough replicas stored
  5  permission denied: token refused, signature invalid or expired
  6  not found on any keepstore`
