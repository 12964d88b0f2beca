import { KeepError } from '../shared/errors.js'
import type { PullItem, TrashItem } from '../shared/worklist-items.js'
import { placeBlock, type Placement } from './balance-slots.js'
import type { Topology, TopologyMount } from './topology.js'

/** One copy of a block as an index reported it. */
export interface Replica {
  /** Server uuid. */
  server: string
  /** Mount uuid; must be a mount of `server` in the topology. */
  mount: string
  /** Nanoseconds since the epoch, exactly as the index said (the trash guard compares it exactly). */
  mtime: bigint
}

/** What the collections ask of a referenced block (PROTOCOL §7). */
export interface Want {
  /** Maximum over the referencing collections; below 1 counts as 1 (a referenced block is never all trash). */
  replication: number
  /** Union over the collections, each wanting `replication` copies; empty means `['default']`. */
  classes: readonly string[]
  /** Locator tokens referring to the block across all collections; only the report uses it (dedup savings). */
  references?: number
}

export interface BlockState {
  hash: string
  size: number
  replicas: readonly Replica[]
  /** `undefined`: no collection references the block. */
  want: Want | undefined
}

export interface BalancePolicy {
  /** A replica whose mtime (ns) is below this is older than `blobSigningTTL`: it may be trashed. */
  trashCutoff: bigint
}

/**
 * What a block is, first match wins:
 * - `lost`: referenced, held nowhere.
 * - `under-replicated`: some class has fewer copies, anywhere, than wanted
 *   (mounts of that class, each mount's `replication`, one device counted
 *   once). Nothing is trashed.
 * - `misplaced`: enough copies, but pulls are pending (a wanted position
 *   lacks the block) or the wanted positions cannot reach the count.
 * - `over-replicated`: nothing to pull; some copy is not wanted (trashed
 *   when old, one per mtime per run, and not sharing an mtime with a copy
 *   that stays; otherwise kept).
 * - `ok`: every copy is wanted and nothing is missing.
 * - `garbage`: unreferenced, some copy older than the cutoff.
 * - `young-unreferenced`: unreferenced, every copy younger than the cutoff (left alone).
 */
export const CATEGORIES = [
  'ok',
  'misplaced',
  'under-replicated',
  'over-replicated',
  'lost',
  'garbage',
  'young-unreferenced',
] as const

export type Category = (typeof CATEGORIES)[number]

/** A pull item for the keepstore `server` (uuid). */
export interface PullChange {
  server: string
  item: PullItem
}

/** A trash item for the keepstore `server` (uuid). */
export interface TrashChange {
  server: string
  item: TrashItem
}

/**
 * keep-balance's count of a block's replicas (its `balancedBlockState`),
 * over the mounts in scope, one device counted once.
 */
export interface ReplicaCounts {
  /** Copies that stay: wanted, untrashable, protected, or sharing an mtime with one of those. */
  needed: number
  /** Copies not wanted (trashed now, or later: too young, or one of several with one mtime). */
  unneeded: number
  /** Wanted mounts a pull will fill (0 for a block held nowhere). */
  pulling: number
  /** The replication of the three above falls short of the class's desired replication. */
  unachievable: boolean
}

export interface ClassCounts extends ReplicaCounts {
  cls: string
}

/** What the metrics and the confirmed replication need of a block, besides its category. */
export interface BlockCounts {
  /**
   * Every mount (keep-balance's `blockState`); `unachievable` when any wanted
   * class is (keep-balance computes it against 0, so it never is there).
   */
  block: ReplicaCounts
  /** The cluster's classes, then wanted classes no mount has, each sorted (keep-balance's `classState`). */
  classes: ClassCounts[]
  /**
   * Referenced blocks: the replication held in each wanted class (sorted),
   * anywhere, one device once; a collection's confirmed replication is the
   * minimum of these over its blocks and classes.
   */
  held: { classes: readonly string[]; copies: number[] } | undefined
  /** Some copy is younger than the TTL. */
  young: boolean
}

/**
 * The decision for one block. Pulls and trashes come in rendezvous order
 * (server, then mount order), independent of the order of `BlockState.replicas`.
 */
export interface BlockDecision {
  category: Category
  pulls: PullChange[]
  trashes: TrashChange[]
  /** Set by {@link balanceBlock}; absent in decisions made by hand. */
  counts?: BlockCounts
}

const DEFAULT_CLASSES: readonly string[] = ['default']
/** Per-class replication while counting a block (reused: deciding a block is synchronous). */
const REPLICATION_SCRATCH = new Float64Array(64)

/**
 * Decides one block with keep-balance's `balanceBlock` (PROTOCOL §8), with
 * no I/O. For each wanted class (sorted), every mount is a slot, ordered:
 * mounts of the class first; then slots already wanted (copies on mounts
 * that cannot trash, or chosen by an earlier class); then rendezvous order
 * of the servers; then slots holding the block; then mount order. A first
 * pass takes at most one slot per server, a second pass any slot (further
 * mounts of the same servers, never a new copy on a file system a wanted
 * mount of the class is on), each slot adding its mount's `replication`
 * until the class has its count; the first copies met are protected until
 * they alone reach the count. Missing copies at wanted slots are pulled.
 * Copies neither wanted nor protected nor sharing an mtime with a copy that
 * stays are trashed when older than the cutoff, one per mtime per run, in
 * rendezvous order; nothing is trashed while any class is under-replicated.
 * Throws `KEEP_INTERNAL` for a replica on a mount the topology does not have.
 */
export function balanceBlock(block: BlockState, topology: Topology, policy: BalancePolicy): BlockDecision {
  const held = resolveReplicas(block, topology)
  if (block.want !== undefined && held.length === 0) return lostBlock(block.want, topology)
  const want = block.want
  const classes = want === undefined ? [] : classesOf(want)
  const desired = want === undefined ? 0 : Math.max(1, want.replication)
  const placement = placeBlock(block.hash, block.replicas, held, topology, classes, desired)
  try {
    return decide(block, held, placement, topology, classes, desired, policy)
  } finally {
    placement.release()
  }
}

function resolveReplicas(block: BlockState, topology: Topology): TopologyMount[] {
  const held = new Array<TopologyMount>(block.replicas.length)
  for (let i = 0; i < block.replicas.length; i++) {
    const replica = block.replicas[i]!
    const mount = topology.mounts.get(replica.mount)
    if (mount === undefined || mount.server.uuid !== replica.server) {
      throw new KeepError('KEEP_INTERNAL', `balance: ${block.hash} on unknown mount ${replica.server}/${replica.mount}`)
    }
    held[i] = mount
  }
  return held
}

function classesOf(want: Want): readonly string[] {
  const classes = want.classes
  if (classes.length === 0) return DEFAULT_CLASSES
  for (let i = 1; i < classes.length; i++) {
    if (classes[i - 1]! >= classes[i]!) return [...new Set(classes)].sort()
  }
  return classes
}

function decide(
  block: BlockState,
  held: readonly TopologyMount[],
  placement: Placement,
  topology: Topology,
  classes: readonly string[],
  desired: number,
  policy: BalancePolicy,
): BlockDecision {
  const replicas = block.replicas
  const locator = `${block.hash}+${block.size}`
  const pulls: PullChange[] = []
  const trashes: TrashChange[] = []
  const trashedMtimes: bigint[] = []
  let old = false
  let young = false
  for (const mount of placement.slots) {
    const r = placement.replicaOn(mount)
    if (r >= 0) {
      const mtime = replicas[r]!.mtime
      if (mtime < policy.trashCutoff) old = true
      else young = true
      if (placement.wanted(mount)) continue
      // Several copies with one mtime may be one file seen through several mounts (#20242): one per run.
      if (mtime >= policy.trashCutoff || trashedMtimes.includes(mtime)) continue
      trashedMtimes.push(mtime)
      trashes.push({ server: mount.server.uuid, item: { locator, block_mtime: mtime, mount_uuid: mount.uuid } })
    } else if (placement.wanted(mount)) {
      pulls.push({ server: mount.server.uuid, item: { locator, servers: sourcesFor(mount, held, placement), mount_uuid: mount.uuid } })
    }
  }
  const counts = countReplicas(placement, topology, classes, desired, held.length, young)
  let category: Category
  if (block.want === undefined) category = old ? 'garbage' : 'young-unreferenced'
  else if (placement.underReplicated) category = 'under-replicated'
  else if (pulls.length > 0 || placement.short) category = 'misplaced'
  else category = placement.extra > 0 ? 'over-replicated' : 'ok'
  return { category, pulls, trashes, counts }
}

/**
 * Pull sources: the other servers holding the block, in rendezvous order,
 * then the target server itself when it holds the block on another mount
 * (a move between classes on one server).
 */
function sourcesFor(target: TopologyMount, held: readonly TopologyMount[], placement: Placement): string[] {
  const servers: string[] = []
  let self = false
  for (const server of placement.order) {
    if (!held.some((m) => m.server === server)) continue
    if (server === target.server) self = true
    else servers.push(server.url)
  }
  if (self) servers.push(target.server.url)
  return servers
}

/**
 * keep-balance's `computeBlockState` for the block and for each class, in
 * one walk over the slots: a copy that stays is needed, one that goes (or
 * waits) unneeded, a wanted mount without it pulling; a device seen through
 * several mounts counts once per scope.
 */
function countReplicas(
  placement: Placement,
  topology: Topology,
  classes: readonly string[],
  desired: number,
  have: number,
  young: boolean,
): BlockCounts {
  const perClass: ClassCounts[] = []
  for (const cls of topology.classes) perClass.push({ cls, needed: 0, unneeded: 0, pulling: 0, unachievable: false })
  for (const cls of classes) {
    if (!topology.classes.includes(cls)) perClass.push({ cls, needed: 0, unneeded: 0, pulling: 0, unachievable: false })
  }
  const replication = perClass.length <= REPLICATION_SCRATCH.length ? REPLICATION_SCRATCH : new Float64Array(perClass.length)
  for (let c = 0; c < perClass.length; c++) replication[c] = 0
  const block: ReplicaCounts = { needed: 0, unneeded: 0, pulling: 0, unachievable: false }
  const slots = placement.slots
  for (let i = 0; i < slots.length; i++) {
    const mount = slots[i]!
    const holds = placement.replicaOn(mount) >= 0
    const wanted = placement.wanted(mount)
    if (!holds && !(wanted && have > 0)) continue
    if (!seenBefore(placement, i, undefined, have)) tally(block, holds, wanted)
    for (let c = 0; c < perClass.length; c++) {
      const counts = perClass[c]!
      if (!mount.classes.has(counts.cls) || seenBefore(placement, i, counts.cls, have)) continue
      tally(counts, holds, wanted)
      replication[c]! += mount.replication
    }
  }
  for (let c = 0; c < perClass.length; c++) {
    const counts = perClass[c]!
    counts.unachievable = classes.includes(counts.cls) && replication[c]! < desired
    if (counts.unachievable) block.unachievable = true
  }
  return { block, classes: perClass, held: classes.length === 0 ? undefined : { classes, copies: placement.copies }, young }
}

function tally(counts: ReplicaCounts, holds: boolean, wanted: boolean): void {
  if (!holds) counts.pulling++
  else if (wanted) counts.needed++
  else counts.unneeded++
}

/** An earlier slot (of class `cls`, if given) that counted is on the same device as slot `i`. */
function seenBefore(placement: Placement, i: number, cls: string | undefined, have: number): boolean {
  const slots = placement.slots
  const device = slots[i]!.deviceId
  if (device === '') return false
  for (let j = 0; j < i; j++) {
    const m = slots[j]!
    if (m.deviceId !== device || (cls !== undefined && !m.classes.has(cls))) continue
    if (placement.replicaOn(m) >= 0 || (placement.wanted(m) && have > 0)) return true
  }
  return false
}

/** Referenced, held nowhere: nothing to pull from, every wanted class unachievable. */
function lostBlock(want: Want, topology: Topology): BlockDecision {
  const classes = classesOf(want)
  const none = (cls: string): ClassCounts => ({ cls, needed: 0, unneeded: 0, pulling: 0, unachievable: classes.includes(cls) })
  const perClass = topology.classes.map(none)
  for (const cls of classes) if (!topology.classes.includes(cls)) perClass.push(none(cls))
  return {
    category: 'lost',
    pulls: [],
    trashes: [],
    counts: {
      block: { needed: 0, unneeded: 0, pulling: 0, unachievable: true },
      classes: perClass,
      held: { classes, copies: classes.map(() => 0) },
      young: false,
    },
  }
}
