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
  readonly classes: ReadonlySet<string>
  readonly server: TopologyServer
  /** Position in the topology's canonical order (servers by uuid, then mounts by uuid). */
  readonly rank: number
}

export interface TopologyServer {
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
  let rank = 0
  for (const info of sorted) {
    if (seen.has(info.uuid)) throw new KeepError('KEEP_INTERNAL', `balance: server ${info.uuid} listed twice`)
    seen.add(info.uuid)
    const serverMounts: TopologyMount[] = []
    const classes = new Map<string, TopologyMount[]>()
    const server: TopologyServer = { uuid: info.uuid, url: info.url, mounts: serverMounts, classes }
    for (const m of [...info.mounts].sort((a, b) => compareStrings(a.uuid, b.uuid))) {
      if (mounts.has(m.uuid)) throw new KeepError('KEEP_INTERNAL', `balance: mount ${m.uuid} listed twice`)
      const mount: TopologyMount = {
        uuid: m.uuid,
        priority: m.priority,
        replication: m.replication,
        allowWrite: m.allowWrite,
        allowTrash: m.allowTrash,
        deviceId: m.deviceId,
        classes: new Set(m.storageClasses),
        server,
        rank: rank++,
      }
      mounts.set(m.uuid, mount)
      serverMounts.push(mount)
      for (const cls of mount.classes) {
        let writable = classes.get(cls)
        if (writable === undefined) classes.set(cls, (writable = []))
        if (mount.allowWrite) writable.push(mount)
      }
    }
    out.push(server)
  }
  return { servers: out, mounts }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
