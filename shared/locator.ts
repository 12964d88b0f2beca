import { KeepError } from './errors.js'
import { isHash } from './hash.js'

/**
 * A parsed block locator (PROTOCOL §1): `hash[+size][+hint…]`.
 *
 * Parsing checks the grammar only. Whether the size fits a block (≤ 64 MiB)
 * is the caller's business, and so is every `+A` hint: a hint counts as a
 * signature when it starts with `A`, and the signer decides whether it is
 * well formed (a bad one is a 400 `invalid signature`, not an invalid locator).
 */
export interface Locator {
  /** 32 lowercase hex digits. */
  hash: string
  /** The size hint, when the first hint is one. */
  size: number | undefined
  /** Every other hint, verbatim and in order, without the `+` (neither size nor A-hints). */
  hints: string[]
  /** Every hint starting with `A`, verbatim and in order, without the `+`; possibly malformed. */
  signatures: string[]
}

const SIZE_RE = /^[0-9]+$/
const CODE_0 = 48
const CODE_9 = 57
const CODE_A = 65

function invalid(message: string): KeepError {
  return new KeepError('KEEP_INVALID_LOCATOR', `invalid locator: ${message}`)
}

/** Whitespace (any script's) and ASCII control characters. */
const NOT_IN_HINT_RE = /[\s\x00-\x1f\x7f]/

/**
 * The one place a hint's characters are checked (PROTOCOL §1): anything but
 * `+`, whitespace and ASCII control characters, so UTF-8 hints such as
 * `+👶🦈` pass, as in Keep. Plain ASCII letters and digits, the usual case,
 * are checked without the regex.
 */
function checkHint(hint: string): void {
  for (let i = 0; i < hint.length; i++) {
    const c = hint.charCodeAt(i)
    if (c <= 0x20 || c >= 0x7f) {
      if (NOT_IN_HINT_RE.test(hint)) throw invalid('hint with whitespace or a control character')
      return
    }
  }
}

/**
 * Parses a locator, throwing `KEEP_INVALID_LOCATOR` on every form §1 rules
 * out: a hash that is not 32 lowercase hex digits, an empty part (`++`,
 * leading or trailing `+`), a size that is not plain decimal digits or not a
 * safe integer, a later hint starting with a digit. Hints are also limited
 * to characters other than whitespace and ASCII controls (they end up in logs
 * and space-separated manifests).
 */
export function parseLocator(text: string): Locator {
  let end = text.indexOf('+')
  if (end === -1) end = text.length
  const hash = text.slice(0, end)
  if (!isHash(hash)) throw invalid('hash is not 32 lowercase hex digits')
  const loc: Locator = { hash, size: undefined, hints: [], signatures: [] }
  let first = true
  while (end < text.length) {
    const start = end + 1
    end = text.indexOf('+', start)
    if (end === -1) end = text.length
    if (end === start) throw invalid('empty hint')
    const part = text.slice(start, end)
    const c = part.charCodeAt(0)
    if (c >= CODE_0 && c <= CODE_9) {
      if (!first) throw invalid('only the first hint may start with a digit')
      loc.size = parseSize(part)
    } else {
      checkHint(part)
      if (c === CODE_A) loc.signatures.push(part)
      else loc.hints.push(part)
    }
    first = false
  }
  return loc
}

function parseSize(part: string): number {
  if (!SIZE_RE.test(part)) throw invalid('size is not a decimal number')
  const size = Number(part)
  if (!Number.isSafeInteger(size)) throw invalid('size is beyond 2^53')
  return size
}

/** `hash[+size][+hints…][+signatures…]`: the inverse of {@link parseLocator}, up to hint order. */
export function formatLocator(loc: Locator): string {
  let text = loc.size === undefined ? loc.hash : `${loc.hash}+${loc.size}`
  for (const hint of loc.hints) text += `+${hint}`
  for (const sig of loc.signatures) text += `+${sig}`
  return text
}

/** `hash+size`, the form a PUT answers and an index lists. */
export function bareLocator(hash: string, size: number): string {
  return `${hash}+${size}`
}
