import { CATEGORIES, type BlockDecision, type BlockState, type Category, type ReplicaCounts } from './balance.js'

/** Blocks of one category. */
export interface CategoryTotals {
  blocks: number
  /** Sum of block sizes, each block once. */
  bytes: number
  /** Copies seen in the indexes (one per mount listing the block). */
  replicas: number
}

/** Pull or trash items decided (before `pullLimit` / `trashLimit`: the commit phase counts what it defers). */
export interface WorkTotals {
  items: number
  /** Sum of the sizes of the blocks the items move or trash. */
  bytes: number
}

/** keep-balance's `blocksNBytes`: replicas, blocks, and bytes (a block's size once per replica counted). */
export interface BlocksBytes {
  replicas: number
  blocks: number
  bytes: number
}

/** One storage class in keep-balance's `classStats`. */
export interface ClassStats {
  needed: BlocksBytes
  unneeded: BlocksBytes
  pulling: BlocksBytes
  unachievable: BlocksBytes
}

/**
 * keep-balance's `balancerStats` (collectStatistics), from which it sets its
 * `arvados_keep_*` gauges. Block categories, first match wins: lost; pulls
 * pending (underreplicated, by the pulls); a wanted class unachievable
 * (underreplicated, one replica); every copy unneeded (garbage when all are
 * older than the TTL, else transient); some copy unneeded (overreplicated);
 * else balanced.
 */
export interface KeepStats {
  lost: BlocksBytes
  overreplicated: BlocksBytes
  transient: BlocksBytes
  garbage: BlocksBytes
  underreplicated: BlocksBytes
  /** Blocks some wanted class cannot reach (keep-balance declares this gauge but never fills it). */
  unachievable: BlocksBytes
  balanced: BlocksBytes
  /** Needed replicas of blocks that have some (the "total commitment"). */
  desired: BlocksBytes
  /** Every replica counted (the "total usage"). */
  total: BlocksBytes
  /** Index n: blocks with n replicas (needed + unneeded, one device once). */
  replicationHistogram: number[]
  classes: Record<string, ClassStats>
  /** Σ references × size over referenced blocks: the apparent size of the collections. */
  collectionBytes: number
  /** Σ size over referenced blocks. */
  referencedBytes: number
  /** Σ references. */
  referenceCount: number
  referencedBlocks: number
}

/**
 * What one run decided, summed block by block with {@link addDecision}; the
 * report, the metrics and the summary log line are built from it.
 */
export interface BalanceTotals {
  categories: Record<Category, CategoryTotals>
  pulls: WorkTotals
  trashes: WorkTotals
  /** References from collections to blocks (`Want.references`; a referenced block without it counts 1). */
  references: number
  /**
   * Bytes content addressing saves: every reference beyond a block's first
   * would have stored its bytes again without deduplication.
   */
  dedupSavedBytes: number
  keep: KeepStats
}

const none = (): BlocksBytes => ({ replicas: 0, blocks: 0, bytes: 0 })

export function createKeepStats(): KeepStats {
  return {
    lost: none(),
    overreplicated: none(),
    transient: none(),
    garbage: none(),
    underreplicated: none(),
    unachievable: none(),
    balanced: none(),
    desired: none(),
    total: none(),
    replicationHistogram: [0, 0],
    classes: {},
    collectionBytes: 0,
    referencedBytes: 0,
    referenceCount: 0,
    referencedBlocks: 0,
  }
}

export function createTotals(): BalanceTotals {
  const categories = {} as Record<Category, CategoryTotals>
  for (const category of CATEGORIES) categories[category] = { blocks: 0, bytes: 0, replicas: 0 }
  return {
    categories,
    pulls: { items: 0, bytes: 0 },
    trashes: { items: 0, bytes: 0 },
    references: 0,
    dedupSavedBytes: 0,
    keep: createKeepStats(),
  }
}

/** Adds one block and its decision to `totals` (mutates it). */
export function addDecision(totals: BalanceTotals, block: BlockState, decision: BlockDecision): void {
  const category = totals.categories[decision.category]
  category.blocks++
  category.bytes += block.size
  category.replicas += block.replicas.length
  totals.pulls.items += decision.pulls.length
  totals.pulls.bytes += decision.pulls.length * block.size
  totals.trashes.items += decision.trashes.length
  totals.trashes.bytes += decision.trashes.length * block.size
  if (block.want !== undefined) {
    const references = Math.max(1, block.want.references ?? 1)
    totals.references += references
    totals.dedupSavedBytes += (references - 1) * block.size
  }
  if (decision.counts !== undefined) addKeepStats(totals.keep, block, decision)
}

function add(into: BlocksBytes, replicas: number, size: number): void {
  into.replicas += replicas
  into.blocks++
  into.bytes += replicas * size
}

/** keep-balance's collectStatistics for one block. */
function addKeepStats(s: KeepStats, block: BlockState, decision: BlockDecision): void {
  const counts = decision.counts!
  const size = block.size
  const references = block.want === undefined ? 0 : Math.max(1, block.want.references ?? 1)
  if (references > 0) {
    s.collectionBytes += references * size
    s.referencedBytes += size
    s.referenceCount += references
    s.referencedBlocks++
  }
  for (const c of counts.classes) {
    const cs = (s.classes[c.cls] ??= { needed: none(), unneeded: none(), pulling: none(), unachievable: none() })
    if (c.unachievable) add(cs.unachievable, 1, size)
    if (c.needed > 0) add(cs.needed, c.needed, size)
    if (c.unneeded > 0) add(cs.unneeded, c.unneeded, size)
    if (c.pulling > 0) add(cs.pulling, c.pulling, size)
  }
  const b: ReplicaCounts = counts.block
  if (decision.category === 'lost') add(s.lost, 1, size)
  else if (b.pulling > 0) add(s.underreplicated, b.pulling, size)
  else if (b.unachievable) add(s.underreplicated, 1, size)
  else if (b.unneeded > 0 && b.needed === 0) add(counts.young ? s.transient : s.garbage, b.unneeded, size)
  else if (b.unneeded > 0) add(s.overreplicated, b.unneeded, size)
  else add(s.balanced, b.needed, size)
  if (b.unachievable && decision.category !== 'lost') add(s.unachievable, 1, size)
  if (b.needed > 0) add(s.desired, b.needed, size)
  if (b.needed + b.unneeded > 0) add(s.total, b.needed + b.unneeded, size)
  const n = b.needed + b.unneeded
  while (s.replicationHistogram.length <= n) s.replicationHistogram.push(0)
  s.replicationHistogram[n]!++
}
