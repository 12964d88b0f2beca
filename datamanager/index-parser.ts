import { KeepError } from '../shared/errors.js'
import { parseIndexLine, type IndexEntry } from '../shared/index-format.js'

/** The lines of one 3-hex prefix as they arrived, and what they parse to. */
export interface PrefixGroup {
  prefix: string
  entries: IndexEntry[]
  /** Exactly the bytes of the group's lines, each with its `\n` (what a digest covers). */
  bytes: Buffer
  /** Its lines (also with `checkOnly`, where `entries` stays empty). */
  lines: number
}

export interface IndexParserOptions {
  /** The prefix the index was requested with: every hash must start with it. */
  prefix?: string
  /** Accept lines out of hash order (the index is being spilled to be sorted). */
  allowUnsorted?: boolean
  /**
   * Check every line as usual but return no entries (groups keep their bytes and line counts): for a read
   * that only stores the lines, without allocating a hash string and a bigint per line (not with `allowUnsorted`).
   */
  checkOnly?: boolean
}

/** The longest index line accepted (PROTOCOL §8); a real one is about 55 bytes. */
export const MAX_INDEX_LINE = 1024

/**
 * Turns a keepstore index body (PROTOCOL §3), fed as arbitrary chunks, into
 * entries. A complete index is lines sorted by hash, then exactly one empty
 * line and nothing after it; {@link IndexParser.end} says whether that final
 * line was seen. A malformed line, a hash outside the prefix, a repeated
 * hash, bytes after the final line, and — unless `allowUnsorted` — a hash
 * lower than the one before it (also setting {@link IndexParser.unsorted})
 * stop parsing: `push` returns the entries before the fault and
 * {@link IndexParser.error} holds a `KEEP_BAD_REQUEST` saying what it was.
 * A line longer than {@link MAX_INDEX_LINE} is such a fault (and sets
 * {@link IndexParser.lineTooLong}) as soon as its first 1 KiB + 1 bytes are
 * in: the rest is never buffered. Each byte is copied at most once more
 * (a line split across chunks), so parsing is linear whatever the chunks.
 */
export class IndexParser {
  /** Index lines parsed. */
  lines = 0
  /** True once a hash arrived out of order (and `allowUnsorted` was off). */
  unsorted = false
  /** True once a line passed {@link MAX_INDEX_LINE} bytes. */
  lineTooLong = false
  /** The first fault; nothing is parsed after it. */
  error: Error | undefined
  private rest: Buffer | undefined
  private terminated = false
  private previous = ''
  private readonly prefix: string
  private readonly allowUnsorted: boolean
  private readonly checkOnly: boolean
  /** With `checkOnly`: the previous line's hash, as bytes (`previous` stays empty). */
  private readonly previousBytes = Buffer.alloc(32)
  private readonly prefixBytes: Buffer
  private groupLines = 0
  // Grouping by prefix (pushGroups): the open group and where its bytes are.
  private grouping = false
  private groupKey = -1
  private groupPrefix = ''
  private groupEntries: IndexEntry[] = []
  private groupParts: Buffer[] = []
  private groupStart = 0
  private groups: PrefixGroup[] = []

  constructor(options: IndexParserOptions = {}) {
    this.prefix = options.prefix ?? ''
    this.allowUnsorted = options.allowUnsorted ?? false
    this.checkOnly = options.checkOnly ?? false
    if (this.checkOnly && this.allowUnsorted) throw new Error('IndexParser: checkOnly and allowUnsorted do not go together')
    this.prefixBytes = Buffer.from(this.prefix, 'latin1')
  }

  /** Parses the complete lines of `chunk` (plus what was left of the previous one). */
  push(chunk: Buffer): IndexEntry[] {
    const out: IndexEntry[] = []
    if (this.error !== undefined) return out
    try {
      this.parse(chunk, out)
    } catch (err) {
      this.error = err as Error
      this.rest = undefined
    }
    return out
  }

  /**
   * Like {@link push}, but returns the prefix groups (3 hex digits) that are
   * complete: a group ends where the next prefix starts or at the final
   * empty line. Use one of `push` and `pushGroups` per parser.
   */
  pushGroups(chunk: Buffer): PrefixGroup[] {
    this.grouping = true
    if (this.error === undefined) {
      try {
        this.parse(chunk, this.groupEntries)
      } catch (err) {
        this.error = err as Error
        this.rest = undefined
      }
    }
    const done = this.groups
    this.groups = []
    return done
  }

  /** True when the body ended right after its final empty line; false when it was cut short or faulty. */
  end(): boolean {
    return this.error === undefined && this.terminated && this.rest === undefined
  }

  private parse(chunk: Buffer, out: IndexEntry[]): void {
    let pos = 0
    if (this.rest !== undefined) {
      // Finish the line the previous chunk left open: at most MAX_INDEX_LINE bytes are ever held.
      const nl = chunk.indexOf(10)
      const tail = nl === -1 ? chunk : chunk.subarray(0, nl)
      if (this.rest.length + tail.length > MAX_INDEX_LINE) this.tooLong()
      const line = Buffer.concat([this.rest, tail])
      this.rest = undefined
      if (nl === -1) {
        this.rest = line
        return
      }
      if (this.grouping) this.groupStart = 0
      this.line(line, 0, line.length, out)
      if (this.grouping && line.length > 0) this.groupParts.push(Buffer.concat([line, NEWLINE]))
      pos = nl + 1
    }
    if (this.grouping) this.groupStart = pos
    try {
      this.parseLines(chunk, pos, out)
    } finally {
      if (this.grouping && !this.terminated) {
        const rest = this.rest as Buffer | undefined
        const end = rest === undefined ? chunk.length : chunk.length - rest.length
        if (end > this.groupStart) this.groupParts.push(chunk.subarray(this.groupStart, end))
      }
    }
  }

  private parseLines(chunk: Buffer, pos: number, out: IndexEntry[]): void {
    while (pos < chunk.length) {
      if (this.terminated) throw bad('data after the final empty line')
      const nl = chunk.indexOf(10, pos)
      if (nl === -1) {
        if (chunk.length - pos > MAX_INDEX_LINE) this.tooLong()
        // A copy: a slice would keep the whole chunk alive.
        this.rest = Buffer.from(chunk.subarray(pos))
        break
      }
      this.line(chunk, pos, nl, out)
      pos = nl + 1
    }
  }

  private line(buf: Buffer, start: number, end: number, out: IndexEntry[]): void {
    if (this.terminated) throw bad('data after the final empty line')
    if (end === start) {
      if (this.grouping) this.closeGroup(buf, start)
      this.terminated = true
      return
    }
    if (end - start > MAX_INDEX_LINE) this.tooLong()
    if (this.grouping) {
      const key = end - start < 3 ? -2 : (buf[start]! << 16) | (buf[start + 1]! << 8) | buf[start + 2]!
      if (key !== this.groupKey) {
        this.closeGroup(buf, start)
        this.groupKey = key
        this.groupPrefix = buf.toString('latin1', start, Math.min(end, start + 3))
      }
      out = this.groupEntries
      this.groupLines++
    }
    if (this.checkOnly) return this.checkBytes(buf, start, end)
    // latin1: one byte per char, and a fresh string that holds nothing of the chunk alive.
    out.push(this.check(fastEntry(buf, start, end) ?? parseIndexLine(buf.toString('latin1', start, end))))
  }

  /** {@link check} of a line, read from its bytes: what `push` would accept, and the same faults. */
  private checkBytes(buf: Buffer, start: number, end: number): void {
    let at = buf
    let from = start
    if (!wellFormed(buf, start, end)) {
      // Unusual lines (and every malformed one) as parseIndexLine reads them, faults and all.
      at = Buffer.from(parseIndexLine(buf.toString('latin1', start, end)).hash, 'latin1')
      from = 0
    }
    const hash = (): string => at.toString('latin1', from, from + 32)
    // Byte loops, not Buffer#compare and #copy: 32 bytes are cheaper compared here than a call into C++ (30 M lines).
    const prefix = this.prefixBytes
    for (let i = 0; i < prefix.length; i++) if (at[from + i] !== prefix[i]) throw bad(`${hash()} outside the requested prefix ${this.prefix}`)
    const previous = this.previousBytes
    if (this.lines > 0) {
      let order = 0
      for (let i = 0; i < 32 && order === 0; i++) order = at[from + i]! - previous[i]!
      if (order === 0) throw bad(`${hash()} listed twice`)
      if (order < 0) {
        this.unsorted = true
        throw bad(`${hash()} after ${previous.toString('latin1')}: not sorted`)
      }
    }
    for (let i = 0; i < 32; i++) previous[i] = at[from + i]!
    this.lines++
  }

  /** Ends the open group just before `start` (in the chunk being parsed, or at the start of a joined line). */
  private closeGroup(buf: Buffer, start: number): void {
    if (start > this.groupStart) this.groupParts.push(buf.subarray(this.groupStart, start))
    this.groupStart = start
    if (this.groupKey !== -1) {
      this.groups.push({ prefix: this.groupPrefix, entries: this.groupEntries, bytes: Buffer.concat(this.groupParts), lines: this.groupLines })
    }
    this.groupKey = -1
    this.groupEntries = []
    this.groupParts = []
    this.groupLines = 0
  }

  private tooLong(): never {
    this.lineTooLong = true
    throw bad(`a line longer than ${MAX_INDEX_LINE} bytes`)
  }

  private check(entry: IndexEntry): IndexEntry {
    const hash = entry.hash
    if (!hash.startsWith(this.prefix)) throw bad(`${hash} outside the requested prefix ${this.prefix}`)
    if (hash <= this.previous) {
      if (hash === this.previous) throw bad(`${hash} listed twice`)
      if (!this.allowUnsorted) {
        this.unsorted = true
        throw bad(`${hash} after ${this.previous}: not sorted`)
      }
    }
    if (!this.allowUnsorted) this.previous = hash
    this.lines++
    return entry
  }
}

const NEWLINE = Buffer.from('\n')
const LOWER_HEX = new Uint8Array(256)
for (const c of '0123456789abcdef') LOWER_HEX[c.charCodeAt(0)] = 1
const PLUS = 43
const SPACE = 32
const ZERO = 48
const NINE = 57

/**
 * The common case of {@link parseIndexLine}, read straight from the bytes
 * (no line string, no regular expression): about twice as fast, which
 * matters at 30 M lines. Anything unusual — including every malformed line —
 * returns `undefined`, and `parseIndexLine` decides (and explains).
 */
function fastEntry(buf: Buffer, start: number, end: number): IndexEntry | undefined {
  if (end - start < 36 || buf[start + 32] !== PLUS) return undefined
  for (let i = start; i < start + 32; i++) if (LOWER_HEX[buf[i]!] === 0) return undefined
  let i = start + 33
  let size = 0
  for (; i < end; i++) {
    const c = buf[i]!
    if (c < ZERO || c > NINE) break
    size = size * 10 + (c - ZERO)
  }
  // 15 digits always fit in 2^53; longer sizes take the slow path.
  if (i === start + 33 || i - start - 33 > 15 || buf[i] !== SPACE) return undefined
  const mtimeStart = ++i
  // The mtime as two numbers, its last 9 digits apart: exact up to 24 digits (ns mtimes have 19).
  const split = end - 9
  let high = 0
  let low = 0
  for (; i < end; i++) {
    const c = buf[i]!
    if (c < ZERO || c > NINE) return undefined
    if (i < split) high = high * 10 + (c - ZERO)
    else low = low * 10 + (c - ZERO)
  }
  if (i === mtimeStart || end - mtimeStart > 24) return undefined
  const text = buf as unknown as Latin1Slicer
  const mtime = high === 0 ? BigInt(low) : BigInt(high) * NS_PER_S + BigInt(low)
  return { hash: text.latin1Slice(start, start + 32), size, mtime }
}

const NS_PER_S = 1_000_000_000n

/** True when {@link fastEntry} would read the line (and so `parseIndexLine` would, to the same entry): checked, nothing allocated. */
function wellFormed(buf: Buffer, start: number, end: number): boolean {
  if (end - start < 36 || buf[start + 32] !== PLUS) return false
  for (let i = start; i < start + 32; i++) if (LOWER_HEX[buf[i]!] === 0) return false
  let i = start + 33
  for (; i < end; i++) {
    const c = buf[i]!
    if (c < ZERO || c > NINE) break
  }
  if (i === start + 33 || i - start - 33 > 15 || buf[i] !== SPACE) return false
  const mtimeStart = ++i
  for (; i < end; i++) {
    const c = buf[i]!
    if (c < ZERO || c > NINE) return false
  }
  return i !== mtimeStart && end - mtimeStart <= 24
}

/**
 * `Buffer#latin1Slice`: what `toString('latin1', start, end)` ends up
 * calling, without two layers of argument handling (30 M lines, two strings
 * each).
 */
interface Latin1Slicer {
  latin1Slice(start: number, end: number): string
}

function bad(message: string): KeepError {
  return new KeepError('KEEP_BAD_REQUEST', `malformed index: ${message}`)
}
