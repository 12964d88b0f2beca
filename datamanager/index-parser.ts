import { KeepError } from '../shared/errors.js'
import { parseIndexLine, type IndexEntry } from '../shared/index-format.js'

export interface IndexParserOptions {
  /** The prefix the index was requested with: every hash must start with it. */
  prefix?: string
  /** Accept lines out of hash order (the index is being spilled to be sorted). */
  allowUnsorted?: boolean
}

/**
 * Turns a keepstore index body (PROTOCOL §3), fed as arbitrary chunks, into
 * entries. A complete index is lines sorted by hash, then exactly one empty
 * line and nothing after it; {@link IndexParser.end} says whether that final
 * line was seen. Throws `KEEP_BAD_REQUEST` for a malformed line, a hash
 * outside the prefix, a repeated hash, bytes after the final line, and — unless
 * `allowUnsorted` — `KEEP_BAD_REQUEST` with {@link IndexParser.unsorted} set
 * when a hash is lower than the one before it.
 */
export class IndexParser {
  /** Index lines parsed. */
  lines = 0
  /** True once a hash arrived out of order (and `allowUnsorted` was off). */
  unsorted = false
  private rest: Buffer | undefined
  private terminated = false
  private previous = ''
  private readonly prefix: string
  private readonly allowUnsorted: boolean

  constructor(options: IndexParserOptions = {}) {
    this.prefix = options.prefix ?? ''
    this.allowUnsorted = options.allowUnsorted ?? false
  }

  /** Parses the complete lines of `chunk` (plus what was left of the previous one). */
  push(chunk: Buffer): IndexEntry[] {
    const buf = this.rest === undefined ? chunk : Buffer.concat([this.rest, chunk])
    this.rest = undefined
    const out: IndexEntry[] = []
    let pos = 0
    while (pos < buf.length) {
      if (this.terminated) throw bad('data after the final empty line')
      const nl = buf.indexOf(10, pos)
      if (nl === -1) {
        this.rest = buf.subarray(pos)
        break
      }
      if (nl === pos) {
        this.terminated = true
      } else {
        // latin1: one byte per char, and a fresh string that holds nothing of the chunk alive.
        out.push(this.entry(buf.toString('latin1', pos, nl)))
      }
      pos = nl + 1
    }
    return out
  }

  /** True when the body ended right after its final empty line; false when it was cut short. */
  end(): boolean {
    return this.terminated && this.rest === undefined
  }

  private entry(line: string): IndexEntry {
    const entry = parseIndexLine(line)
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

function bad(message: string): KeepError {
  return new KeepError('KEEP_BAD_REQUEST', `malformed index: ${message}`)
}
