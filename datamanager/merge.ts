import type { IndexEntry } from '../shared/index-format.js'
import type { BlockState, Replica } from './balance.js'
import type { PrefixRefs, ReferencedBlock } from './references.js'

/** One mount's index lines of one prefix, sorted by hash. */
export interface MountGroup {
  server: string
  mount: string
  entries: readonly IndexEntry[]
}

/** Called once per distinct hash, in hash order. */
export type BlockVisitor = (block: BlockState, reference: ReferencedBlock | undefined) => void

/**
 * Merges the mounts' index lines of one prefix in hash order and hands each
 * block — its replicas and what the collections want of it, joined by hash —
 * to `visit`; then the referenced blocks no index listed (lost), in hash
 * order. Only blocks some index lists yield pulls or trashes, so the items
 * still come in hash order. The run goes prefix by prefix, so memory is one
 * prefix's lines, whatever the number of blocks. Each step scans the heads
 * of all mounts: O(mounts) per block, fine for the few dozen mounts of a
 * cluster. Returns the blocks visited.
 */
export function mergePrefix(groups: readonly MountGroup[], references: PrefixRefs | undefined, visit: BlockVisitor): number {
  const pos = new Array<number>(groups.length).fill(0)
  let blocks = 0
  for (;;) {
    let min: string | undefined
    for (let i = 0; i < groups.length; i++) {
      const entry = groups[i]!.entries[pos[i]!]
      if (entry !== undefined && (min === undefined || entry.hash < min)) min = entry.hash
    }
    if (min === undefined) break
    const reference = references?.take(min)
    const replicas: Replica[] = []
    let size = 0
    for (let i = 0; i < groups.length; i++) {
      const entry = groups[i]!.entries[pos[i]!]
      if (entry === undefined || entry.hash !== min) continue
      pos[i]!++
      if (replicas.length === 0) size = entry.size
      replicas.push({ server: groups[i]!.server, mount: groups[i]!.mount, mtime: entry.mtime })
    }
    blocks++
    visit({ hash: min, size, replicas, want: reference?.want }, reference)
  }
  for (const reference of references?.rest() ?? []) {
    blocks++
    visit({ hash: reference.hash, size: reference.size, replicas: [], want: reference.want }, reference)
  }
  return blocks
}
