import type { PullItem, TrashItem } from '../shared/worklist-items.js'
import type { AtomicWriter } from './atomic-file.js'
import { balanceBlock, type BalancePolicy, type BlockState } from './balance.js'
import { addDecision, createTotals, type BalanceTotals } from './balance-report.js'
import type { ChangeSets } from './change-sets.js'
import type { ConfirmedTracker } from './confirmed.js'
import type { ReferencedBlock } from './references.js'
import type { Topology } from './topology.js'

/**
 * What deciding one prefix's blocks adds to a run — totals, pull and trash
 * items, lost-blocks lines, counts — as text: built by {@link OutcomeBuilder},
 * stored with the prefix, and always added to the run by
 * {@link applyOutcome}, whether just computed or reused from the last
 * committed run. One path for both is what makes a reused prefix count
 * exactly as a recomputed one.
 *
 * Text: a JSON header line (`b` blocks, `l` index lines, `r` referenced
 * blocks, `t` totals, `n` items per server as [pulls, trashes], `x` the
 * lost-blocks lines, `c` when present: per referenced block some wanted
 * class holds fewer copies of than it wants, [classes, copies, collections]
 * for `collections-confirmed.jsonl`), then one line per item in hash order:
 * `P <server> <locator> <mount|-> <source servers, comma-separated>` or
 * `T <server> <locator> <mtime> <mount|->`, servers and mounts by their
 * position in the run's topology (which the stored fingerprint pins).
 */
export interface OutcomeHeader {
  b: number
  l: number
  r: number
  t: BalanceTotals
  n: number[]
  x: string
  c?: Array<[readonly string[], readonly number[], string]>
}

/** The run-wide sums outcomes are added to. */
export interface RunAccumulator {
  totals: BalanceTotals
  changeSets: ChangeSets
  lost: AtomicWriter
  /** Told the held replication of referenced blocks (absent in a dry run). */
  confirmed?: ConfirmedTracker | undefined
  blocks: number
  lines: number
  referencedBlocks: number
}

/** Positions of servers and mounts in a topology, both ways. */
export interface TopologyIndex {
  topology: Topology
  servers: readonly string[]
  urls: readonly string[]
  mounts: readonly string[]
  serverIndex: ReadonlyMap<string, number>
  urlIndex: ReadonlyMap<string, number>
  mountIndex: ReadonlyMap<string, number>
}

export function indexTopology(topology: Topology): TopologyIndex {
  const servers = topology.servers.map((s) => s.uuid)
  const urls = topology.servers.map((s) => s.url)
  const mounts = [...topology.mounts.values()].sort((a, b) => a.rank - b.rank).map((m) => m.uuid)
  const positions = (list: readonly string[]): Map<string, number> => new Map(list.map((x, i) => [x, i]))
  return { topology, servers, urls, mounts, serverIndex: positions(servers), urlIndex: positions(urls), mountIndex: positions(mounts) }
}

/** Decides blocks of one prefix (in hash order) and writes down what they add. */
export class OutcomeBuilder {
  /** The newest replica mtime older than the cutoff, and the oldest one not older. */
  maxOld: bigint | undefined
  minYoung: bigint | undefined
  private readonly totals = createTotals()
  private readonly counts: number[]
  private blocks = 0
  private lines = 0
  private referenced = 0
  private lost = ''
  private items = ''
  private held: OutcomeHeader['c'] = undefined

  constructor(
    private readonly index: TopologyIndex,
    private readonly policy: BalancePolicy,
  ) {
    this.counts = new Array<number>(index.servers.length * 2).fill(0)
  }

  visit(block: BlockState, reference: ReferencedBlock | undefined): void {
    const cutoff = this.policy.trashCutoff
    for (const r of block.replicas) {
      if (r.mtime < cutoff) {
        if (this.maxOld === undefined || r.mtime > this.maxOld) this.maxOld = r.mtime
      } else if (this.minYoung === undefined || r.mtime < this.minYoung) {
        this.minYoung = r.mtime
      }
    }
    const decision = balanceBlock(block, this.index.topology, this.policy)
    addDecision(this.totals, block, decision)
    this.blocks++
    this.lines += block.replicas.length
    if (reference !== undefined) {
      this.referenced++
      const held = decision.counts?.held
      if (held !== undefined && held.copies.some((n) => n < reference.want.replication)) (this.held ??= []).push([held.classes, held.copies, reference.collections])
    }
    if (decision.category === 'lost') this.lost += `${block.hash}+${block.size} ${reference?.collections ?? ''}\n`
    const { serverIndex, urlIndex, mountIndex } = this.index
    for (const { server, item } of decision.pulls) {
      const s = serverIndex.get(server)!
      this.counts[2 * s]!++
      const mount = item.mount_uuid === undefined ? '-' : mountIndex.get(item.mount_uuid)!
      const from = item.servers.length === 0 ? '-' : item.servers.map((u) => urlIndex.get(u)!).join(',')
      this.items += `P ${s} ${item.locator} ${mount} ${from}\n`
    }
    for (const { server, item } of decision.trashes) {
      const s = serverIndex.get(server)!
      this.counts[2 * s + 1]!++
      const mount = item.mount_uuid === undefined ? '-' : mountIndex.get(item.mount_uuid)!
      this.items += `T ${s} ${item.locator} ${item.block_mtime} ${mount}\n`
    }
  }

  /** True while nothing was visited. */
  get empty(): boolean {
    return this.blocks === 0
  }

  text(): string {
    const header: OutcomeHeader = { b: this.blocks, l: this.lines, r: this.referenced, t: this.totals, n: this.counts, x: this.lost }
    if (this.held !== undefined) header.c = this.held
    return `${JSON.stringify(header)}\n${this.items}`
  }
}

/** True when decisions made with another cutoff hold for `cutoff`: no replica mtime lies between the two. */
export function windowHolds(window: { maxOld: bigint | undefined; minYoung: bigint | undefined }, cutoff: bigint): boolean {
  return (window.maxOld === undefined || window.maxOld < cutoff) && (window.minYoung === undefined || cutoff <= window.minYoung)
}

/**
 * Adds one prefix's outcome to the run: totals and counts, its lost-blocks
 * lines, and its items to the servers' change sets in order, up to each
 * list's cap (the rest counted as deferred without being decoded).
 */
export async function applyOutcome(text: string, acc: RunAccumulator, index: TopologyIndex): Promise<void> {
  const nl = text.indexOf('\n')
  const header = JSON.parse(text.slice(0, nl)) as OutcomeHeader
  addNumbers(acc.totals as unknown as Numbers, header.t as unknown as Numbers)
  acc.blocks += header.b
  acc.lines += header.l
  acc.referencedBlocks += header.r
  if (header.x !== '') await acc.lost.write(header.x)
  if (header.c !== undefined && acc.confirmed !== undefined) {
    for (const [classes, copies, collections] of header.c) {
      const noting = acc.confirmed.addHeld(collections, { classes, copies })
      if (noting !== undefined) await noting
    }
  }
  const sets = acc.changeSets
  let anyRoom = false
  for (let s = 0; s < index.servers.length; s++) {
    if ((header.n[2 * s]! > 0 && sets.room(index.servers[s]!, 'pull') > 0) || (header.n[2 * s + 1]! > 0 && sets.room(index.servers[s]!, 'trash') > 0)) anyRoom = true
  }
  if (!anyRoom) {
    for (let s = 0; s < index.servers.length; s++) {
      if (header.n[2 * s]! > 0) sets.defer(index.servers[s]!, 'pull', header.n[2 * s]!)
      if (header.n[2 * s + 1]! > 0) sets.defer(index.servers[s]!, 'trash', header.n[2 * s + 1]!)
    }
    return
  }
  for (let pos = nl + 1; pos < text.length; ) {
    const end = text.indexOf('\n', pos)
    const line = text.slice(pos, end)
    pos = end + 1
    const fields = line.split(' ')
    const server = index.servers[Number(fields[1])]!
    const locator = fields[2]!
    const size = Number(locator.slice(locator.indexOf('+') + 1))
    if (fields[0] === 'P') {
      if (sets.room(server, 'pull') <= 0) {
        sets.defer(server, 'pull', 1)
        continue
      }
      const item: PullItem = { locator, servers: fields[4] === '-' ? [] : fields[4]!.split(',').map((u) => index.urls[Number(u)]!) }
      if (fields[3] !== '-') item.mount_uuid = index.mounts[Number(fields[3])]!
      sets.addPull(server, item, size)
    } else {
      if (sets.room(server, 'trash') <= 0) {
        sets.defer(server, 'trash', 1)
        continue
      }
      const item: TrashItem = { locator, block_mtime: BigInt(fields[3]!) }
      if (fields[4] !== '-') item.mount_uuid = index.mounts[Number(fields[4])]!
      sets.addTrash(server, item, size)
    }
  }
}

type Numbers = { [key: string]: number | Numbers }

/** Adds every number of `from` into `into`, at the same path (totals are nested records and arrays of counts). */
function addNumbers(into: Numbers, from: Numbers): void {
  for (const key of Object.keys(from)) {
    const v = from[key]!
    if (typeof v === 'number') into[key] = ((into[key] as number | undefined) ?? 0) + v
    else addNumbers((into[key] ??= (Array.isArray(v) ? [] : {}) as Numbers) as Numbers, v)
  }
  // An array that grew here (a longer replication histogram) has no holes: a count never seen is 0.
  if (Array.isArray(into)) for (let i = 0; i < into.length; i++) (into as number[])[i] ??= 0
}
