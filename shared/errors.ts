/**
 * The one error type of the project. Codes are stable strings (tests assert on
 * them, never on messages); {@link statusOf} is the one code → HTTP status table.
 */
export const KEEP_ERROR_STATUS = {
  KEEP_BAD_REQUEST: 400,
  KEEP_INVALID_LOCATOR: 400,
  KEEP_INVALID_SIGNATURE: 400,
  KEEP_HASH_MISMATCH: 400, // body MD5 differs from the locator's hash
  KEEP_SIZE_MISMATCH: 400, // body length differs from the size hint
  KEEP_UNAUTHORIZED: 401, // no token
  KEEP_EXPIRED_SIGNATURE: 401,
  KEEP_FORBIDDEN: 403, // a token, but not one that may do this
  KEEP_BLOCK_NOT_FOUND: 404,
  KEEP_NOT_FOUND: 404, // something other than a block (a mount, a route that is disabled)
  KEEP_METHOD_NOT_ALLOWED: 405,
  KEEP_TIMEOUT: 408,
  KEEP_FENCED: 409, // a list from a datamanager whose lock is older than one already applied (PROTOCOL §4)
  KEEP_TOO_LARGE: 413,
  KEEP_HASH_COLLISION: 500, // same hash, different bytes already stored
  KEEP_IO: 500,
  KEEP_INTERNAL: 500,
  KEEP_CONFIG: 500, // programs exit 2 on it; as a status it only shows if misused
  KEEP_CORRUPT: 502, // stored bytes fail their hash: never served
  KEEP_UNAVAILABLE: 503, // overloaded, or no volume can take a write right now; a client: no answer at all
  KEEP_INSUFFICIENT_REPLICAS: 503, // a client stored fewer replicas than wanted (as Keep's proxy answers)
  KEEP_READ_ONLY: 503, // a volume refused a write or trash because it is read-only
  KEEP_FULL: 507, // every candidate volume is full
} as const

export type KeepErrorCode = keyof typeof KEEP_ERROR_STATUS

export class KeepError extends Error {
  readonly code: KeepErrorCode
  constructor(code: KeepErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'KeepError'
  }

  /** The HTTP status this error renders as. */
  get status(): number {
    return KEEP_ERROR_STATUS[this.code]
  }
}

export function statusOf(code: KeepErrorCode): number {
  return KEEP_ERROR_STATUS[code]
}

export function isKeepError(err: unknown, code?: KeepErrorCode): err is KeepError {
  return err instanceof KeepError && (code === undefined || err.code === code)
}

/** Wraps anything thrown into a KeepError, keeping KeepErrors as they are. */
export function toKeepError(err: unknown, fallback: KeepErrorCode = 'KEEP_INTERNAL'): KeepError {
  if (err instanceof KeepError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new KeepError(fallback, message, { cause: err })
}
