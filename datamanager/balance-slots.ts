import { md5hex } from '../shared/hash.js'
import { rendezvousSuffix, serviceOrder } from '../shared/rendezvous.js'
import type { Replica } from './balance.js'
import type { Topology, TopologyMount, TopologyServer } from './topology.js'

/** Which mounts keep or get a copy of one block, decided class by class (keep-balance's slots). */
export interface Placement {
  /** Servers in rendezvous order for the block. */
  readonly order: readonly TopologyServer[]
  /** The mounts holding the block or wanted for it, in rendezvous order: server, then mount order. */
  readonly slots: readonly TopologyMount[]
  /** Index in `BlockState.replicas` of the copy on `mount`, or -1. */
  replicaOn(mount: TopologyMount): number
  /** The mount keeps its copy (or gets one by a pull when it has none). */
  wanted(mount: TopologyMount): boolean
  /** Some class has fewer copies anywhere than wanted: nothing may be trashed (every copy is wanted). */
  readonly underReplicated: boolean
  /** Some class's wanted mounts cannot reach its count. */
  readonly short: boolean
  /** Copies the passes did not want (before those sharing an mtime with a kept copy, or of an under-replicated block, are kept). */
  readonly extra: number
  /** Per wanted class (in the order given): the replication held anywhere, one device once. A new array per block. */
  readonly copies: number[]
  /** Hands the planner back to the topology; `slots`, `replicaOn` and `wanted` are void after it. */
  release(): void
}

const planners = new WeakMap<Topology, Planner>()
const NO_MEMBERS = new Uint8Array(0)
const uuidOf = (s: TopologyServer): string => s.uuid

/**
 * keep-balance's slot passes for one block (its `balanceBlock` up to the
 * change loop): `classes` sorted, each wanting `desired` replication. Copies
 * on mounts that cannot trash start out wanted. With no class (an
 * unreferenced block) only those are wanted. Deciding a block reuses one
 * planner per topology (arrays indexed by mount rank), so it allocates little.
 */
export function placeBlock(
  hash: string,
  replicas: readonly Replica[],
  held: readonly TopologyMount[],
  topology: Topology,
  classes: readonly string[],
  desired: number,
): Placement {
  let planner = planners.get(topology)
  if (planner === undefined || planner.busy) {
    planner = new Planner(topology)
    if (!planners.has(topology)) planners.set(topology, planner)
  }
  planner.plan(hash, replicas, held, classes, desired)
  return planner
}

class Planner implements Placement {
  busy = false
  order: readonly TopologyServer[] = []
  slots: TopologyMount[] = []
  underReplicated = false
  short = false
  extra = 0
  copies: number[] = []

  private readonly replicaAt: Int32Array
  private readonly want: Uint8Array
  private readonly weight: string[]
  private readonly weightStamp: Uint32Array
  private readonly serverRank: Int32Array
  /** Server index → the class pass that wanted a mount on it (keep-balance's wantSrv). */
  private readonly serverWanted: Uint32Array
  /** Mount rank → the class pass that wanted it (wantMnt) or protected its copy (protMnt). */
  private readonly mountWanted: Uint32Array
  private readonly mountProtected: Uint32Array
  private stamp = 0
  private pass = 0
  private hash = ''
  private replicas: readonly Replica[] = []
  private held: readonly TopologyMount[] = []
  private wantedList: TopologyMount[] = []
  /** Replica index → its mtime guards every copy with that mtime (keep-balance's unsafeToDelete). */
  private unsafe = new Uint8Array(8)
  // One class's pass (keep-balance's trySlot state).
  private cls = ''
  /** Mount rank → 1 when the mount has the class of the pass. */
  private member: Uint8Array = NO_MEMBERS
  private desired = 0
  private replWant = 0
  private replProt = 0
  private wantMnt: TopologyMount[] = []
  private wantDev: string[] = []
  // The class's slot order, built as far as the passes read (reused: `listLength` entries are current).
  private readonly list: TopologyMount[] = []
  private listLength = 0
  /** The first this many of `wantedList` were wanted before the class's pass. */
  private wantedBefore = 0
  private group = 0
  private next = 0

  constructor(private readonly topology: Topology) {
    const n = topology.mountList.length
    this.replicaAt = new Int32Array(n).fill(-1)
    this.want = new Uint8Array(n)
    this.weight = new Array<string>(n).fill('')
    this.weightStamp = new Uint32Array(n)
    this.serverRank = new Int32Array(topology.servers.length)
    this.serverWanted = new Uint32Array(topology.servers.length)
    this.mountWanted = new Uint32Array(n)
    this.mountProtected = new Uint32Array(n)
  }

  plan(hash: string, replicas: readonly Replica[], held: readonly TopologyMount[], classes: readonly string[], desired: number): void {
    this.busy = true
    this.stamp = (this.stamp + 1) >>> 0 || 1
    this.hash = hash
    this.replicas = replicas
    this.held = held
    this.order = serviceOrder(hash, this.topology.servers, uuidOf)
    for (let i = 0; i < this.order.length; i++) this.serverRank[this.order[i]!.index] = i
    if (this.unsafe.length < replicas.length) this.unsafe = new Uint8Array(replicas.length * 2)
    else for (let i = 0; i < replicas.length; i++) this.unsafe[i] = 0
    this.underReplicated = false
    this.short = false
    this.copies = []
    for (let i = 0; i < held.length; i++) {
      const m = held[i]!
      if (this.replicaAt[m.rank]! < 0) this.replicaAt[m.rank] = i
      if (!m.allowTrash) this.setWant(m)
    }
    for (const cls of classes) this.placeClass(cls, desired)
    // (ours) every copy that stays guards its mtime, not only the protected ones (keep-balance's unsafeToDelete).
    this.extra = 0
    for (let i = 0; i < held.length; i++) {
      if (this.want[held[i]!.rank] !== 1) this.extra++
      else this.unsafe[i] = 1
    }
    for (let i = 0; i < held.length; i++) {
      if (this.underReplicated || this.isUnsafe(i)) this.setWant(held[i]!)
    }
    const slots: TopologyMount[] = []
    this.slots = slots
    for (const m of this.wantedList) slots.push(m)
    for (const m of held) if (this.want[m.rank] !== 1 && !slots.includes(m)) slots.push(m)
    sortSmall(slots, 0, slots.length, this.rendezvousCompare)
  }

  replicaOn(mount: TopologyMount): number {
    return this.replicaAt[mount.rank]!
  }

  wanted(mount: TopologyMount): boolean {
    return this.want[mount.rank] === 1
  }

  release(): void {
    for (const m of this.held) this.replicaAt[m.rank] = -1
    for (const m of this.wantedList) this.want[m.rank] = 0
    this.wantedList = []
    this.held = []
    this.replicas = []
    this.busy = false
  }

  private setWant(m: TopologyMount): void {
    if (this.want[m.rank] === 1) return
    this.want[m.rank] = 1
    this.wantedList.push(m)
  }

  /** Some copy whose mtime is guarded has the mtime of replica `i`. */
  private isUnsafe(i: number): boolean {
    const mtime = this.replicas[i]!.mtime
    for (let j = 0; j < this.replicas.length; j++) if (this.unsafe[j] === 1 && this.replicas[j]!.mtime === mtime) return true
    return false
  }

  private placeClass(cls: string, desired: number): void {
    this.pass = (this.pass + 1) >>> 0 || 1
    this.cls = cls
    this.member = this.topology.members.get(cls) ?? NO_MEMBERS
    this.desired = desired
    this.replWant = 0
    this.replProt = 0
    if (this.wantMnt.length > 0) this.wantMnt = []
    if (this.wantDev.length > 0) this.wantDev = []
    this.listLength = 0
    this.wantedBefore = this.wantedList.length
    this.group = 0
    this.next = 0
    // First at most one mount per server, then (fewer servers than copies wanted) any mount.
    let done = false
    for (let i = 0, m = this.slotAt(0); m !== undefined && !done; m = this.slotAt(++i)) {
      if (this.serverWanted[m.server.index] !== this.pass) done = this.trySlot(m, false)
    }
    for (let i = 0, m = this.slotAt(0); m !== undefined && !done; m = this.slotAt(++i)) done = this.trySlot(m, true)
    if (this.replWant < desired) this.short = true
    const inClass = copiesOf(cls, this.held)
    this.copies.push(inClass)
    if (inClass < desired) this.underReplicated = true
    // Views of a wanted device (another mount with its device_id) are never trashed.
    for (let i = 0; i < this.held.length; i++) {
      const m = this.held[i]!
      if (m.deviceId !== '' && this.wantDev.includes(m.deviceId)) this.unsafe[i] = 1
    }
  }

  /** keep-balance's trySlot: true once the class is protected and placed at its count. */
  private trySlot(m: TopologyMount, secondPass: boolean): boolean {
    if (this.mountWanted[m.rank] === this.pass || (m.deviceId !== '' && this.wantDev.includes(m.deviceId))) return false
    const r = this.replicaAt[m.rank]!
    // The second pass puts no new copy on a file system a wanted mount of the class is on.
    if (secondPass && r < 0 && this.wantMnt.some((w) => w.filesystem === m.filesystem)) return false
    const desired = this.desired
    // (ours) only copies of the class protect it: keep-balance counts any copy, and can then trash one the class needs.
    if (this.replProt < desired && r >= 0 && this.member[m.rank] === 1 && this.mountProtected[m.rank] !== this.pass) {
      this.unsafe[r] = 1
      this.mountProtected[m.rank] = this.pass
      this.replProt += m.replication
    }
    if (this.replWant < desired && (r >= 0 || m.allowWrite)) {
      this.setWant(m)
      this.serverWanted[m.server.index] = this.pass
      this.mountWanted[m.rank] = this.pass
      this.wantMnt.push(m)
      if (m.deviceId !== '') this.wantDev.push(m.deviceId)
      this.replWant += m.replication
    }
    return this.replProt >= desired && this.replWant >= desired
  }

  /**
   * The class's slots in keep-balance's order, built as far as the passes
   * read: (1) mounts of the class already wanted, (2) other mounts of the
   * class, (3) other mounts already wanted, (4) the rest; inside a group by
   * server rendezvous rank, then holding the block first, then mount order.
   * Groups 2 and 4 grow one server at a time, and leave out mounts that
   * cannot change the passes' state (without the block, and read-only or
   * the class already placed), so mount order costs MD5s only where it counts.
   */
  private slotAt(i: number): TopologyMount | undefined {
    while (this.listLength <= i && this.group < 4) this.grow()
    return i < this.listLength ? this.list[i] : undefined
  }

  private add(m: TopologyMount): void {
    this.list[this.listLength++] = m
  }

  private grow(): void {
    const member = this.group < 2 ? 1 : 0
    const inClass = this.member
    const start = this.listLength
    if (this.group === 0 || this.group === 2) {
      for (let i = 0; i < this.wantedBefore; i++) {
        const m = this.wantedList[i]!
        if ((inClass[m.rank] ?? 0) === member) this.add(m)
      }
      sortSmall(this.list, start, this.listLength, this.wantedCompare)
      this.group++
      this.next = 0
      return
    }
    if (this.next >= this.order.length) {
      this.group++
      return
    }
    // A mount wanted already is in group 1 or 3 (wanted before the pass: a mount is listed once).
    const server = this.order[this.next++]!
    for (const m of server.mounts) {
      if ((inClass[m.rank] ?? 0) === member && this.want[m.rank] !== 1 && this.replicaAt[m.rank]! >= 0) this.add(m)
    }
    sortSmall(this.list, start, this.listLength, this.mountCompare)
    if (this.replWant >= this.desired) return
    const middle = this.listLength
    for (const m of server.mounts) {
      if ((inClass[m.rank] ?? 0) === member && this.want[m.rank] !== 1 && this.replicaAt[m.rank]! < 0 && m.allowWrite) this.add(m)
    }
    sortSmall(this.list, middle, this.listLength, this.mountCompare)
  }

  private weightOf(m: TopologyMount): string {
    if (this.weightStamp[m.rank] !== this.stamp) {
      this.weight[m.rank] = md5hex(this.hash + rendezvousSuffix(m.uuid))
      this.weightStamp[m.rank] = this.stamp
    }
    return this.weight[m.rank]!
  }

  /** Mount order inside a server (PROTOCOL §6): priority descending, then the weight ascending. */
  private readonly mountCompare = (a: TopologyMount, b: TopologyMount): number => {
    if (a.priority !== b.priority) return b.priority - a.priority
    const wa = this.weightOf(a)
    const wb = this.weightOf(b)
    return wa < wb ? -1 : wa > wb ? 1 : 0
  }

  private readonly rendezvousCompare = (a: TopologyMount, b: TopologyMount): number =>
    a.server === b.server ? this.mountCompare(a, b) : this.serverRank[a.server.index]! - this.serverRank[b.server.index]!

  private readonly wantedCompare = (a: TopologyMount, b: TopologyMount): number =>
    this.serverRank[a.server.index]! - this.serverRank[b.server.index]! ||
    Number(this.replicaAt[b.rank]! >= 0) - Number(this.replicaAt[a.rank]! >= 0) ||
    this.mountCompare(a, b)
}

/**
 * Sorts `items[start, end)` in place: insertion sort, for the few slots of a
 * block (`Array.prototype.sort` costs more to set up than it saves).
 */
function sortSmall<T>(items: T[], start: number, end: number, compare: (a: T, b: T) => number): void {
  for (let i = start + 1; i < end; i++) {
    const item = items[i]!
    let j = i - 1
    for (; j >= start && compare(items[j]!, item) > 0; j--) items[j + 1] = items[j]!
    items[j + 1] = item
  }
}

/** Replication of class `cls` held anywhere, one device (or mount) counted once. */
function copiesOf(cls: string, held: readonly TopologyMount[]): number {
  let copies = 0
  outer: for (let i = 0; i < held.length; i++) {
    const mount = held[i]!
    if (!mount.classes.has(cls)) continue
    for (let j = 0; j < i; j++) {
      const other = held[j]!
      if (other === mount || (mount.deviceId !== '' && other.deviceId === mount.deviceId && other.classes.has(cls))) {
        continue outer
      }
    }
    copies += mount.replication
  }
  return copies
}
