import { KeepError } from './errors.js'

/**
 * Byte-level JSON helpers for large lists (PROTOCOL §4): find a top-level
 * array's elements without a parse tree of the whole body, and keep numbers
 * beyond 2^53 exact by parsing them as their digits.
 */

const QUOTE = 0x22
const BACKSLASH = 0x5c
const MINUS = 0x2d
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y

/** Index of the quote closing the string that opens at `open` (or the length when unterminated). */
function stringEnd(text: string | Buffer, open: number): number {
  let i = open
  for (;;) {
    i = text.indexOf('"', i + 1)
    if (i < 0) return text.length
    let slashes = 0
    while (text[i - 1 - slashes] === '\\' || text[i - 1 - slashes] === BACKSLASH) slashes++
    if (slashes % 2 === 0) return i
  }
}

/**
 * JSON text with every number outside strings turned into a string holding
 * its exact digits, so the native `JSON.parse` keeps nanosecond mtimes beyond
 * 2^53. One pass over the text; far faster and smaller than a lossless parser
 * on a 64 MiB list (PROTOCOL §4: memory while accepting a list stays bounded).
 * Malformed text stays malformed.
 */
export function quoteNumbers(text: string): string {
  const pieces: string[] = []
  let last = 0
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      i = stringEnd(text, i)
    } else if (c === MINUS || isDigit(c)) {
      NUMBER_RE.lastIndex = i
      const m = NUMBER_RE.exec(text)
      if (m === null) continue // not a number: JSON.parse rejects it
      pieces.push(text.slice(last, i), '"', m[0], '"')
      i += m[0].length - 1
      last = i + 1
    }
  }
  if (pieces.length === 0) return text
  pieces.push(text.slice(last))
  return pieces.join('')
}

export function invalidJson(err: unknown): KeepError {
  return new KeepError('KEEP_BAD_REQUEST', `invalid JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(quoteNumbers(text))
  } catch (err) {
    throw invalidJson(err)
  }
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
const COMMA = 0x2c
const END = 0x5d

/** Element `i` of the array is bytes `[from[i], to[i])`; typed arrays, not 300 k little arrays. */
export interface Ranges {
  from: Uint32Array
  to: Uint32Array
  length: number
}

function pushRange(ranges: Ranges, from: number, to: number): void {
  if (ranges.length === ranges.from.length) {
    const grow = (a: Uint32Array): Uint32Array => {
      const b = new Uint32Array(a.length * 2)
      b.set(a)
      return b
    }
    ranges.from = grow(ranges.from)
    ranges.to = grow(ranges.to)
  }
  ranges.from[ranges.length] = from
  ranges.to[ranges.length] = to
  ranges.length++
}

/**
 * The byte ranges of the elements of a top-level JSON array, found by
 * tracking strings and nesting only (each element is then parsed on its
 * own). Undefined when the text does not start with `[`; structural faults
 * (unbalanced brackets, empty elements, trailing bytes) → invalid JSON.
 * Safe on UTF-8 bytes: multi-byte sequences never contain ASCII bytes.
 */
export function arrayElements(buf: Buffer): Ranges | undefined {
  const n = buf.length
  let i = 0
  while (i < n && isSpace(buf[i]!)) i++
  if (i >= n || buf[i] !== 0x5b) return undefined
  const ranges: Ranges = { from: new Uint32Array(1024), to: new Uint32Array(1024), length: 0 }
  let start = ++i
  let depth = 0
  let closed = false
  for (; i < n; i++) {
    const c = buf[i]!
    if (c === QUOTE) {
      i = stringEnd(buf, i)
      if (i >= n) throw invalidJson(new Error('unterminated string'))
    } else if (c === 0x5b || c === 0x7b) depth++
    else if (depth > 0 && (c === 0x5d || c === 0x7d)) depth--
    else if (depth === 0 && (c === COMMA || c === END)) {
      let from = start
      while (from < i && isSpace(buf[from]!)) from++
      if (from === i) {
        if (c === END && ranges.length === 0) {
          closed = true
          break
        }
        throw invalidJson(new Error(`empty array element at byte ${i}`))
      }
      pushRange(ranges, from, i)
      start = i + 1
      if (c === END) {
        closed = true
        break
      }
    } else if (depth === 0 && c === 0x7d) throw invalidJson(new Error(`unexpected ${String.fromCharCode(c)} at byte ${i}`))
  }
  if (!closed) throw invalidJson(new Error('unexpected end of the list'))
  for (i++; i < n; i++) if (!isSpace(buf[i]!)) throw invalidJson(new Error(`unexpected data after the list at byte ${i}`))
  return ranges
}
