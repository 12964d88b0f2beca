import { createHash } from 'node:crypto'

/**
 * `GET /mounts/<uuid>/digests` (PROTOCOL §3, ours): one line per 3-hex
 * prefix `000`…`fff`, in order, `<prefix> <blocks> <sha256 hex>\n`, then one
 * empty line. The sha256 covers exactly the bytes of the lines
 * `GET /mounts/<uuid>/blocks/<prefix>` returns, its final empty line
 * excluded, so a reader that kept those bytes knows, without reading them
 * again, whether a prefix changed.
 */

/** Hex digits of a digest prefix. */
export const DIGEST_PREFIX_LENGTH = 3
/** `000`…`fff`. */
export const PREFIX_COUNT = 16 ** DIGEST_PREFIX_LENGTH

/** Every digest prefix, in order: `INDEX_PREFIXES[i]` is `i` in 3 lowercase hex digits. */
export const INDEX_PREFIXES: readonly string[] = Array.from({ length: PREFIX_COUNT }, (_, i) => i.toString(16).padStart(DIGEST_PREFIX_LENGTH, '0'))

/** The sha256 of no bytes: the digest of a prefix without blocks. */
export const EMPTY_SHA256 = createHash('sha256').digest('hex')

export function sha256hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** One line of a digests body. */
export interface PrefixDigest {
  blocks: number
  sha256: string
}

export function formatDigestLine(prefix: string, digest: PrefixDigest): string {
  return `${prefix} ${digest.blocks} ${digest.sha256}\n`
}

const LOWER_HEX = new Uint8Array(128)
for (const c of '0123456789abcdef') LOWER_HEX[c.charCodeAt(0)] = 1

/** `<blocks> <sha256>` after the prefix and its space, or undefined when malformed. */
function digestOf(line: string): PrefixDigest | undefined {
  const space = line.indexOf(' ', 4)
  if (space < 5 || space > 20 || line.length !== space + 65 || (line.charCodeAt(4) === 48 && space !== 5)) return undefined
  let blocks = 0
  for (let i = 4; i < space; i++) {
    const d = line.charCodeAt(i) - 48
    if (d < 0 || d > 9) return undefined
    blocks = blocks * 10 + d
  }
  for (let i = space + 1; i < line.length; i++) if (LOWER_HEX[line.charCodeAt(i)] !== 1) return undefined
  return { blocks, sha256: line.slice(space + 1) }
}

/**
 * Reads a digests body. Anything but exactly {@link PREFIX_COUNT} well-formed
 * lines in prefix order and one final empty line is refused, with a
 * one-line reason (the caller then reads the whole index instead).
 */
export function parseDigests(body: string): PrefixDigest[] | string {
  if (!body.endsWith('\n\n') || body.length < 2) return 'no final empty line'
  const lines = body.slice(0, -2).split('\n')
  if (lines.length !== PREFIX_COUNT) return `${lines.length} lines, not ${PREFIX_COUNT}`
  const out = new Array<PrefixDigest>(PREFIX_COUNT)
  for (let i = 0; i < PREFIX_COUNT; i++) {
    const line = lines[i]!
    if (!line.startsWith(INDEX_PREFIXES[i]!) || line.charCodeAt(3) !== 32) return `line ${i + 1} is not prefix ${INDEX_PREFIXES[i]}`
    const digest = digestOf(line)
    if (digest === undefined) return `line ${i + 1} malformed`
    out[i] = digest
  }
  return out
}

/**
 * Builds a digests body from index lines fed in hash order (each with its
 * `\n`): what a keepstore serves, and what test and benchmark stand-ins
 * serve for their own indexes.
 */
export class DigestBuilder {
  private readonly counts = new Array<number>(PREFIX_COUNT).fill(0)
  private readonly hashes = new Map<number, ReturnType<typeof createHash>>()

  /** Adds one line (`<hash>+<size> <mtime>\n`) to its prefix. */
  add(line: string | Uint8Array): void {
    const head = typeof line === 'string' ? line.slice(0, DIGEST_PREFIX_LENGTH) : Buffer.from(line.subarray(0, DIGEST_PREFIX_LENGTH)).toString('latin1')
    const i = parseInt(head, 16)
    let hash = this.hashes.get(i)
    if (hash === undefined) this.hashes.set(i, (hash = createHash('sha256')))
    hash.update(line)
    this.counts[i]!++
  }

  /** The digests body (call once). */
  body(): string {
    let out = ''
    for (let i = 0; i < PREFIX_COUNT; i++) {
      const hash = this.hashes.get(i)
      out += formatDigestLine(INDEX_PREFIXES[i]!, { blocks: this.counts[i]!, sha256: hash === undefined ? EMPTY_SHA256 : hash.digest('hex') })
    }
    return `${out}\n`
  }
}
