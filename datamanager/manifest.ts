import { EMPTY_BLOCK_HASH } from '../shared/hash.js'

/** Walks references one at a time: `while (c.next()) use(c.hash, c.size)`. */
export interface RefCursor {
  next(): boolean
  /** The current reference's hash (a slice of the manifest: copy it before keeping it long). */
  hash: string
  size: number
}

/**
 * The block references of one manifest, one per locator token (the empty
 * block excluded). Read lazily from the manifest text: no array of tokens,
 * no string per reference is ever held, so a manifest costs its own size.
 */
export interface ManifestRefs {
  readonly count: number
  cursor(): RefCursor
}

// hash, size, then hints that do not start with a digit (PROTOCOL §1); a manifest locator always has a size.
const LOCATOR_RE = /^[0-9a-f]{32}\+[0-9]{1,17}(?:\+[^+\s0-9][^+\s]*)*$/
const SEGMENT_RE = /^[0-9]+:[0-9]+:\S+$/
const SPACE = 32
const NEWLINE = 10
const PLUS = 43
const ZERO = 48
const NINE = 57

/**
 * Checks every line of a manifest (PROTOCOL §7): a stream name, one or more
 * locators, then one or more `pos:len:name` segments. Scans the text in
 * place, one token at a time; only a token's own slice is made while it is
 * checked, and nothing is kept.
 * @returns the references (read again from `text` when iterated), or a one-line reason (with the manifest line) when malformed.
 */
export function parseManifest(text: string): ManifestRefs | string {
  let count = 0
  let lineNo = 0
  let pos = 0
  while (pos < text.length) {
    lineNo++
    let end = text.indexOf('\n', pos)
    if (end === -1) end = text.length
    const checked = checkLine(text, pos, end)
    if (typeof checked === 'string') return `manifest line ${lineNo}: ${checked}`
    count += checked
    pos = end + 1
  }
  return { count, cursor: () => textCursor(text) }
}

/** References over arrays (tests, and sources that already hold them). */
export function arrayRefs(hashes: readonly string[], sizes: readonly number[]): ManifestRefs {
  return {
    count: hashes.length,
    cursor() {
      let i = -1
      const c: RefCursor = {
        hash: '',
        size: 0,
        next() {
          if (++i >= hashes.length) return false
          c.hash = hashes[i]!
          c.size = sizes[i]!
          return true
        },
      }
      return c
    },
  }
}

/** All references as `[hash, size]` pairs (small manifests: tests, reports). */
export function refList(refs: ManifestRefs): Array<[string, number]> {
  const out: Array<[string, number]> = []
  const c = refs.cursor()
  while (c.next()) out.push([c.hash, c.size])
  return out
}

/** @returns the references of the line (the empty block excluded), or why it is malformed. */
function checkLine(text: string, start: number, end: number): number | string {
  if (start === end) return 'empty line'
  let token = 0
  let locators = 0
  let refs = 0
  let segments = 0
  let pos = start
  while (pos < end) {
    let stop = text.indexOf(' ', pos)
    if (stop === -1 || stop > end) stop = end
    if (stop === pos) return 'two spaces in a row'
    if (token === 0) {
      if (text.charCodeAt(pos) !== 46 /* . */) return `stream name ${clip(text, pos, stop)} does not start with "."`
    } else if (segments === 0 && LOCATOR_RE.test(text.slice(pos, stop))) {
      locators++
      if (!isEmptyBlock(text, pos)) refs++
    } else if (locators > 0 && SEGMENT_RE.test(text.slice(pos, stop))) {
      segments++
    } else {
      return `unexpected token ${clip(text, pos, stop)}`
    }
    token++
    pos = stop + 1
  }
  if (locators === 0) return 'no locator'
  if (segments === 0) return 'no file segment'
  return refs
}

/** The empty block (its hash with size 0) is not a reference; `pos` is a checked locator. */
function isEmptyBlock(text: string, pos: number): boolean {
  return text.startsWith(EMPTY_BLOCK_HASH, pos) && sizeAt(text, pos + 33) === 0
}

function hexAt(text: string, pos: number): boolean {
  for (let i = pos; i < pos + 32; i++) {
    const ch = text.charCodeAt(i)
    if (!((ch >= ZERO && ch <= NINE) || (ch >= 97 && ch <= 102))) return false
  }
  return true
}

function sizeAt(text: string, i: number): number {
  let size = 0
  for (let ch = text.charCodeAt(i); ch >= ZERO && ch <= NINE; ch = text.charCodeAt(++i)) size = size * 10 + (ch - ZERO)
  return size
}

/**
 * Walks the locators of a manifest `parseManifest` accepted: after each
 * stream name, the tokens of 32 hex digits and a `+` are the locators (a
 * segment has a `:` before offset 32, or digits up to it), and the first
 * segment ends the line's locators.
 */
function textCursor(text: string): RefCursor {
  let pos = 0
  // Inside a line's locators (just after a space), or at the start of a line.
  let inLocators = false
  const c: RefCursor = {
    hash: '',
    size: 0,
    next() {
      for (;;) {
        if (pos >= text.length) return false
        if (!inLocators) {
          // Skip the stream name.
          const space = text.indexOf(' ', pos)
          if (space === -1) {
            pos = text.length
            return false
          }
          pos = space + 1
          inLocators = true
        }
        if (text.charCodeAt(pos + 32) !== PLUS || !hexAt(text, pos)) {
          // The first segment: the rest of the line holds no locator.
          const nl = text.indexOf('\n', pos)
          pos = nl === -1 ? text.length : nl + 1
          inLocators = false
          continue
        }
        const start = pos
        let stop = start + 33
        while (stop < text.length && text.charCodeAt(stop) !== SPACE && text.charCodeAt(stop) !== NEWLINE) stop++
        // A locator never ends its line (segments follow), so `stop` is a space.
        pos = stop + 1
        if (isEmptyBlock(text, start)) continue
        c.hash = text.slice(start, start + 32)
        c.size = sizeAt(text, start + 33)
        return true
      }
    },
  }
  return c
}

function clip(text: string, start: number, stop: number): string {
  return JSON.stringify(stop - start > 40 ? `${text.slice(start, start + 40)}…` : text.slice(start, stop))
}
