import { CATEGORIES, type BlockDecision, type BlockState, type Category } from './balance.js'

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
}
