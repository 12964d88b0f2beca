import { setTimeout as delay } from 'node:timers/promises'
import type { Etcd3, IKeyValue, Watcher } from 'etcd3'
import { keepstoreByOrigin, type Config } from './config.js'
import { createEtcdClient, etcdKeys, etcdReason } from './etcd-client.js'
import { silentLogger, type Logger } from './logger.js'

/**
 * Live membership (DESIGN §7, PROTOCOL §8): which keepstores of the static
 * config are registered in etcd right now. The config stays the set of
 * ALLOWED members: a registration is liveness, never trust. A key for a uuid
 * the config does not list is ignored (and logged once), and a member's url
 * always comes from the config, never from what it registered.
 *
 * Readers: the keepstore (`GET /status`, the pull worker skips sources known
 * to be down), the datamanager (down keepstores, runs on membership changes)
 * and `keep status` (through {@link readMembership}).
 */

/** What a keepstore writes at `<prefix>keepstores/<uuid>`, under its lease. */
export interface Registration {
  url: string
  /** Its volume uuids. */
  volumes: string[]
  /** ISO time the process started. */
  started: string
  version: string
}

/**
 * `live`: registered now. `absent`: not registered (stopped, killed and its
 * lease expired, or cut off from etcd). `unknown`: this process cannot tell
 * (etcd unreachable, not listed yet) — callers then behave as without etcd.
 */
export type LivenessState = 'live' | 'absent' | 'unknown'

export interface MemberLiveness {
  uuid: string
  /** From the config. */
  url: string
  state: LivenessState
  /**
   * Since when (ms since the epoch) this view has seen the member in `state`;
   * for a member absent at the first listing, when the view started.
   * Undefined while `unknown`.
   */
  since: number | undefined
  /**
   * True when `since` is the moment this view saw the change; false when the
   * member was already in `state` at the first listing (perhaps for long).
   */
  observedChange: boolean
  /** What it registered, when live and readable. Informational only. */
  registration: Registration | undefined
}

export interface MembershipChange {
  uuid: string
  state: 'live' | 'absent'
  at: number
}

export interface MembershipView {
  /** True while the view is listed and watching; false while etcd is unreachable. */
  readonly current: boolean
  /** Resolves true once the first listing is in, false if it is not within `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>
  /** Every configured keepstore, in config order. */
  members(): MemberLiveness[]
  /** The state of the configured keepstore with this url (compared by origin); `unknown` for any other url. */
  stateOf(url: string): LivenessState
  /** Called when a configured keepstore appears or disappears (not for the first listing). Returns an unsubscribe. */
  onChange(listener: (change: MembershipChange) => void): () => void
  /** Stops watching; the client stays the caller's. */
  close(): Promise<void>
}

export interface MembershipOptions {
  logger?: Logger
  now?: () => number
  /** Wait before listing again after etcd failed (default 1 s). */
  retryMs?: number
}

interface Known {
  live: boolean
  since: number
  observedChange: boolean
  registration: Registration | undefined
}

/** `isDown`: absent for at least `settleMs` (PROTOCOL §8). Unknown is never down. */
export function isDown(member: Pick<MemberLiveness, 'state' | 'since'>, settleMs: number, now: number): boolean {
  return member.state === 'absent' && member.since !== undefined && now - member.since >= settleMs
}

function parseRegistration(value: Buffer): Registration | undefined {
  try {
    const r = JSON.parse(value.toString('utf8')) as Partial<Registration>
    if (typeof r.url !== 'string' || !Array.isArray(r.volumes)) return undefined
    return { url: r.url, volumes: r.volumes.map(String), started: String(r.started ?? ''), version: String(r.version ?? '') }
  } catch {
    return undefined
  }
}

/**
 * Lists `<prefix>keepstores/` once, then follows a watch from the listing's
 * revision. When the watch drops (etcd down), the view is not current and
 * every state reads `unknown` until it has listed again.
 */
export function watchMembership(client: Etcd3, config: Config, options: MembershipOptions = {}): MembershipView {
  const etcd = config.cluster.etcd
  if (etcd === undefined) throw new Error('watchMembership: cluster.etcd is not configured')
  const logger = options.logger ?? silentLogger()
  const now = options.now ?? Date.now
  const dir = etcdKeys.members(etcd.prefix)
  const configured = new Set(config.keepstores.map((ks) => ks.uuid))
  const known = new Map<string, Known>()
  const warned = new Set<string>()
  const listeners = new Set<(change: MembershipChange) => void>()
  const stop = new AbortController()
  let current = false
  let listedAt = -1n
  let watcher: Watcher | undefined
  let firstListing: (() => void) | undefined
  const listed = new Promise<void>((resolve) => (firstListing = resolve))

  /** The uuid of a member key, or undefined (and logged once) for one the config does not allow. */
  function memberOf(key: Buffer): string | undefined {
    const uuid = key.toString('utf8').slice(dir.length)
    if (configured.has(uuid)) return uuid
    if (!warned.has(uuid)) {
      warned.add(uuid)
      logger.warn({ key: key.toString('utf8') }, 'etcd: a registration for a keepstore the config does not list: ignored')
    }
    return undefined
  }

  function apply(uuid: string, live: boolean, registration: Registration | undefined, announce: boolean): void {
    const before = known.get(uuid)
    if (before !== undefined && before.live === live) {
      before.registration = registration
      return
    }
    const at = now()
    known.set(uuid, { live, since: at, observedChange: before !== undefined, registration })
    if (!announce) return
    const change: MembershipChange = { uuid, state: live ? 'live' : 'absent', at }
    logger.info(change, `keepstore ${uuid} ${live ? 'registered' : 'no longer registered'}`)
    for (const listener of listeners) listener(change)
  }

  async function list(): Promise<void> {
    const res = await client.getAll().prefix(dir).exec()
    const live = new Map<string, Registration | undefined>()
    for (const kv of res.kvs) {
      const uuid = memberOf(kv.key)
      if (uuid !== undefined) live.set(uuid, parseRegistration(kv.value))
    }
    const first = listedAt < 0n
    listedAt = BigInt(res.header.revision)
    for (const uuid of configured) apply(uuid, live.has(uuid), live.get(uuid), !first)
    current = true
    firstListing?.()
  }

  function onEvent(kv: IKeyValue, live: boolean): void {
    if (BigInt(kv.mod_revision) <= listedAt) return
    const uuid = memberOf(kv.key)
    if (uuid !== undefined) apply(uuid, live, live ? parseRegistration(kv.value) : undefined, true)
  }

  /** Lists until it works, then watches from the listing on; after a drop, lists again. */
  async function follow(): Promise<void> {
    let failing = false
    while (!stop.signal.aborted) {
      try {
        await list()
        if (failing) logger.info('etcd: membership listed again')
        failing = false
        break
      } catch (err) {
        if (!failing) logger.warn(`etcd: cannot list the membership: ${etcdReason(err)}; liveness unknown until it can`)
        failing = true
        await delay(options.retryMs ?? 1000, undefined, { signal: stop.signal }).catch(() => undefined)
      }
    }
    if (stop.signal.aborted) return
    const w = client.watch().prefix(dir).startRevision(String(listedAt + 1n)).watcher()
    watcher = w
    let dropped = false
    w.on('put', (kv) => onEvent(kv, true))
    w.on('delete', (kv) => onEvent(kv, false))
    w.on('disconnected', () => {
      if (!dropped) logger.warn('etcd: membership watch lost; liveness unknown until it is back')
      dropped = true
      current = false
    })
    w.on('connected', () => {
      if (!dropped) return
      dropped = false
      // Leases may have expired while we were away: list again rather than trust a replay.
      list().catch((err: unknown) => logger.warn(`etcd: cannot list the membership: ${etcdReason(err)}`))
    })
    w.on('error', (err) => {
      logger.warn(`etcd: membership watch failed: ${etcdReason(err)}; listing again`)
      current = false
      watcher = undefined
      void w.cancel().catch(() => undefined)
      void follow()
    })
  }

  void follow()

  return {
    get current() {
      return current && !stop.signal.aborted
    },
    async ready(timeoutMs) {
      if (stop.signal.aborted) return current
      // Given up at the timeout or when the view closes, whichever comes first.
      const giveUp = AbortSignal.any([stop.signal, AbortSignal.timeout(timeoutMs)])
      const gaveUp = new Promise<boolean>((resolve) => giveUp.addEventListener('abort', () => resolve(false), { once: true }))
      return Promise.race([listed.then(() => true), gaveUp])
    },
    members() {
      const up = this.current
      return config.keepstores.map((ks) => {
        const k = known.get(ks.uuid)
        if (!up || k === undefined) return { uuid: ks.uuid, url: ks.url, state: 'unknown', since: undefined, observedChange: false, registration: undefined }
        return { uuid: ks.uuid, url: ks.url, state: k.live ? 'live' : 'absent', since: k.since, observedChange: k.observedChange, registration: k.registration }
      })
    },
    stateOf(url) {
      const ks = keepstoreByOrigin(config, url)
      const k = ks === undefined ? undefined : known.get(ks.uuid)
      if (!this.current || k === undefined) return 'unknown'
      return k.live ? 'live' : 'absent'
    },
    onChange(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async close() {
      stop.abort()
      const w = watcher
      watcher = undefined
      // cancel() waits for etcd's answer; an unreachable etcd must not hold a shutdown.
      if (w !== undefined) await Promise.race([w.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())])
    },
  }
}

/**
 * One look at the membership, for a command (`keep status`): lists once and
 * closes. `undefined` when the config has no `cluster.etcd`; every member
 * `unknown` when etcd does not answer within `timeoutMs`.
 */
export async function readMembership(config: Config, options: { timeoutMs?: number; logger?: Logger } = {}): Promise<MemberLiveness[] | undefined> {
  if (config.cluster.etcd === undefined) return undefined
  const client = await createEtcdClient(config.cluster.etcd, { callTimeoutMs: options.timeoutMs ?? 5000 })
  const view = watchMembership(client, config, options.logger ? { logger: options.logger } : {})
  try {
    await view.ready(options.timeoutMs ?? 5000)
    return view.members()
  } finally {
    await view.close()
    client.close()
  }
}
