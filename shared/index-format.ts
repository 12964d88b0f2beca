import { KeepError } from './errors.js'
import { isHash } from './hash.js'

/**
 * One line of a keepstore index: `<hash>+<size> <mtime ns>\n`. An index is
 * such lines sorted by hash, then one final empty line; a missing final line
 * means the listing was cut short, and the datamanager refuses to act on it.
 */
export interface IndexEntry {
  hash: string
  size: number
  /** Nanoseconds since the epoch: beyond 2^53, so never a `number`. */
  mtime: bigint
}

const DIGITS_RE = /^[0-9]+$/
const PREFIX_RE = /^[0-9a-f]{0,32}$/

export function formatIndexLine(e: IndexEntry): string {
  return `${e.hash}+${e.size} ${e.mtime}\n`
}

function malformed(message: string): KeepError {
  return new KeepError('KEEP_BAD_REQUEST', `malformed index line: ${message}`)
}

/** Parses one index line (without its `\n`); throws `KEEP_BAD_REQUEST` when malformed. */
export function parseIndexLine(line: string): IndexEntry {
  const plus = line.indexOf('+')
  const space = line.indexOf(' ', plus + 1)
  if (plus === -1 || space === -1) throw malformed('expected <hash>+<size> <mtime>')
  const hash = line.slice(0, plus)
  if (!isHash(hash)) throw malformed('hash is not 32 lowercase hex digits')
  const sizeText = line.slice(plus + 1, space)
  const size = Number(sizeText)
  if (!DIGITS_RE.test(sizeText) || !Number.isSafeInteger(size)) throw malformed('size is not a decimal number')
  const mtimeText = line.slice(space + 1)
  if (!DIGITS_RE.test(mtimeText)) throw malformed('mtime is not decimal nanoseconds')
  return { hash, size, mtime: BigInt(mtimeText) }
}

/** True for an index prefix the server accepts: 0 to 32 lowercase hex digits. */
export function isValidIndexPrefix(p: string): boolean {
  return PREFIX_RE.test(p)
}
