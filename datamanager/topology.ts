import { KeepError } from '../shared/errors.js'

/** One mount as a keepstore's `GET /mounts` reports it (PROTOCOL §3), in camelCase. */
export interface MountInfo {
  uuid: string
  /** Higher first within its server (rendezvous mount order, PROTOCOL §6). */
  priority: number
  /** Copies this mount provides by itself (e.g. 2 for a replicated filesystem). */
  replication: number
  allowWrite: boolean
  allowTrash: boolean
  storageClasses: string[]
  /** Mounts with the same non-empty id are one physical device; an empty id is never shared. */
  deviceId: string
}

/** One keepstore of the cluster config, with the mounts it reported. */
export interface ServerInfo {
  uuid: string
  url: string
  mounts: MountInfo[]
}

/** A mount as balance sees it: its own facts plus where it lives. Never mutated. */
export interface TopologyMount {
  readonly uuid: string
  readonly priority: number
  readonly replication: number
  readonly allowWrite: boolean
  readonly allowTrash: boolean
  readonly deviceId: string
  /**
   * The file system the mount lives on: `<hostname>:<st_dev>`, the first two
   * fields of `device_id` (the whole id when it has fewer than three; the
   * mount uuid when it is empty). The second placement pass never puts two
   * replicas on one file system.
   */
  readonly filesystem: string
  readonly classes: ReadonlySet<string>
  readonly server: TopologyServer
  /** Position in the topology's canonical order (servers by uuid, then mounts by uuid). */
  readonly rank: number
}

export interface TopologyServer {
  /** Position in {@link Topology.servers}. */
  readonly index: number
  readonly uuid: string
  readonly url: string
  readonly mounts: readonly TopologyMount[]
  /**
   * Storage class → this server's writable mounts with it (where a pull for
   * the class may land; empty when only read-only mounts have it). A class
   * none of its mounts has is absent.
   */
  readonly classes: ReadonlyMap<string, readonly TopologyMount[]>
}

/**
 * The servers and mounts of one balancing run, with the lookups that
 * `balanceBlock` needs precomputed so that deciding a block allocates little.
 * Build it once per run with {@link createTopology}; it is immutable.
 */
export interface Topology {
  /** Servers sorted by uuid, their mounts sorted by uuid. */
  readonly servers: readonly TopologyServer[]
  /** Mount uuid → mount (mount uuids are unique across the cluster). */
  readonly mounts: ReadonlyMap<string, TopologyMount>
  /** Every mount, indexed by its `rank`. */
  readonly mountList: readonly TopologyMount[]
  /** The storage classes of the mounts and `default`, sorted (keep-balance's `bal.classes`). */
  readonly classes: readonly string[]
  /** Class → 1 at the rank of each mount that has it (a class no mount has is absent). */
  readonly members: ReadonlyMap<string, Uint8Array>
}

/**
 * Precomputes the lookups of a run. Throws `KEEP_INTERNAL` on a duplicate
 * server or mount uuid: the sanity phase refuses those before balance runs.
 */
export function createTopology(servers: readonly ServerInfo[]): Topology {
  const mounts = new Map<string, TopologyMount>()
  const seen = new Set<string>()
  const sorted = [...servers].sort((a, b) => compareStrings(a.uuid, b.uuid))
  const out: TopologyServer[] = []
  const mountList: TopologyMount[] = []
  const allClasses = new Set<string>(['default'])
  let rank = 0
  for (const info of sorted) {
    if (seen.has(info.uuid)) throw new KeepError('KEEP_INTERNAL', `balance: server ${info.uuid} listed twice`)
    seen.add(info.uuid)
    const serverMounts: TopologyMount[] = []
    const classes = new Map<string, TopologyMount[]>()
    const server: TopologyServer = { index: out.length, uuid: info.uuid, url: info.url, mounts: serverMounts, classes }
    for (const m of [...info.mounts].sort((a, b) => compareStrings(a.uuid, b.uuid))) {
      if (mounts.has(m.uuid)) throw new KeepError('KEEP_INTERNAL', `balance: mount ${m.uuid} listed twice`)
      const mount: TopologyMount = {
        uuid: m.uuid,
        priority: m.priority,
        replication: m.replication,
        allowWrite: m.allowWrite,
        allowTrash: m.allowTrash,
        deviceId: m.deviceId,
        filesystem: filesystemOf(m),
        classes: new Set(m.storageClasses),
        server,
        rank: rank++,
      }
      mounts.set(m.uuid, mount)
      serverMounts.push(mount)
      mountList.push(mount)
      for (const cls of mount.classes) {
        allClasses.add(cls)
        let writable = classes.get(cls)
        if (writable === undefined) classes.set(cls, (writable = []))
        if (mount.allowWrite) writable.push(mount)
      }
    }
    out.push(server)
  }
  const members = new Map<string, Uint8Array>()
  for (const mount of mountList) {
    for (const cls of mount.classes) {
      let member = members.get(cls)
      if (member === undefined) members.set(cls, (member = new Uint8Array(mountList.length)))
      member[mount.rank] = 1
    }
  }
  return { servers: out, mounts, mountList, classes: [...allClasses].sort(), members }
}

function filesystemOf(m: MountInfo): string {
  if (m.deviceId === '') return `mount:${m.uuid}`
  const fields = m.deviceId.split(':')
  return fields.length < 3 ? m.deviceId : `${fields[0]}:${fields[1]}`
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
