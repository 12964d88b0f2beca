import { createHash } from 'node:crypto'
import { formatIndexLine } from '../../shared/index-format.js'
import type { BlockStat, PrefixDigest } from './volume.js'

/** The 4096 three-hex prefixes `000` … `fff`, in order. */
export const PREFIXES: readonly string[] = Array.from({ length: 4096 }, (_, i) => i.toString(16).padStart(3, '0'))

/** sha256 of no bytes: the digest of a prefix without blocks. */
export const EMPTY_SHA256 = createHash('sha256').digest('hex')

/** Per-prefix digests of index entries given in ascending hash order. */
export function digestSorted(entries: Iterable<BlockStat>): PrefixDigest[] {
  const out: PrefixDigest[] = []
  let prefix = ''
  let blocks = 0
  let text = ''
  const close = (): void => {
    out.push({ prefix, blocks, sha256: createHash('sha256').update(text, 'latin1').digest('hex') })
  }
  for (const e of entries) {
    const p = e.hash.slice(0, 3)
    if (p !== prefix) {
      if (prefix) close()
      while (PREFIXES[out.length] !== p) out.push({ prefix: PREFIXES[out.length] as string, blocks: 0, sha256: EMPTY_SHA256 })
      prefix = p
      blocks = 0
      text = ''
    }
    blocks++
    text += formatIndexLine(e)
  }
  if (prefix) close()
  while (out.length < PREFIXES.length) out.push({ prefix: PREFIXES[out.length] as string, blocks: 0, sha256: EMPTY_SHA256 })
  return out
}
