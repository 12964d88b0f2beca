import { setTimeout as delay } from 'node:timers/promises'
import type { Etcd3, Lease } from 'etcd3'
import type { Config, KeepstoreConfig } from '../shared/config.js'
import { createEtcdClient, etcdKeys, etcdReason } from '../shared/etcd-client.js'
import type { Logger } from '../shared/logger.js'
import { watchMembership, type MembershipView, type Registration } from '../shared/membership.js'

/**
 * A keepstore's part in live membership: its registration at
 * `<prefix>keepstores/<uuid>` under a lease it keeps alive, and a view of
 * the others. Nothing here is on the data path: while etcd is unreachable
 * the keepstore serves blocks as ever and registers again once it can.
 */
export interface ClusterMembership {
  view: MembershipView
  /** True while the registration is in etcd as far as this process knows. */
  readonly registered: boolean
  /** Deletes the registration (revokes the lease) and stops watching. */
  close(): Promise<void>
}

export interface MembershipStartOptions {
  logger: Logger
  version: string
  /** Wait before registering again after a failure or a lost lease (default 1 s). */
  retryMs?: number
}

/** Starts registering and watching; never waits for etcd and never throws for an unreachable one. */
export async function startClusterMembership(config: Config, ks: KeepstoreConfig, options: MembershipStartOptions): Promise<ClusterMembership> {
  const etcd = config.cluster.etcd
  if (etcd === undefined) throw new Error('startClusterMembership: cluster.etcd is not configured')
  const client = await createEtcdClient(etcd)
  const logger = options.logger.child({ etcd: etcd.endpoints.join(',') })
  const view = watchMembership(client, config, { logger, ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}) })
  const record: Registration = { url: ks.url, volumes: ks.volumes.map((v) => v.uuid), started: new Date().toISOString(), version: options.version }
  const registration = keepRegistered(client, etcdKeys.member(etcd.prefix, ks.uuid), etcd.leaseTTLSeconds, JSON.stringify(record), {
    logger,
    retryMs: options.retryMs ?? 1000,
  })
  let closing: Promise<void> | undefined
  return {
    view,
    get registered() {
      return registration.registered()
    },
    close: () =>
      (closing ??= (async () => {
        await registration.close()
        await view.close()
        client.close()
      })()),
  }
}

/**
 * Puts `key` = `value` under a lease of `ttlSeconds`, kept alive; when the
 * lease is lost (etcd unreachable for longer than the TTL, or restarted
 * without it), starts over with a new one after `retryMs`.
 */
function keepRegistered(
  client: Etcd3,
  key: string,
  ttlSeconds: number,
  value: string,
  options: { logger: Logger; retryMs: number },
): { registered(): boolean; close(): Promise<void> } {
  const { logger } = options
  const stop = new AbortController()
  let lease: Lease | undefined
  let live = false
  const stopped = new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }))
  const loop = (async () => {
    let failing = false
    while (!stop.signal.aborted) {
      const current = client.lease(ttlSeconds)
      lease = current
      const lost = new Promise<unknown>((resolve) => current.once('lost', resolve))
      try {
        await Promise.race([current.put(key).value(value), stopped])
        if (stop.signal.aborted) return
        live = true
        logger.info({ key, ttlSeconds }, failing ? 'etcd: registered again' : 'etcd: registered')
        failing = false
        const err = await Promise.race([lost, stopped])
        live = false
        if (stop.signal.aborted) return
        logger.warn(`etcd: registration lost (${etcdReason(err)}); registering again`)
      } catch (err) {
        live = false
        current.release()
        if (stop.signal.aborted) return
        if (!failing) logger.warn(`etcd: cannot register: ${etcdReason(err)}; blocks are served all the same, retrying`)
        failing = true
      }
      await delay(options.retryMs, undefined, { signal: stop.signal }).catch(() => undefined)
    }
  })()
  return {
    registered: () => live,
    async close() {
      stop.abort()
      await loop
      const current = lease
      lease = undefined
      live = false
      // Revoking deletes the key at once: a clean stop is seen at once, not after the TTL.
      // Bounded: an unreachable etcd must not hold a shutdown (the lease then expires by itself).
      const revoked = current?.revoke().then(
        () => true,
        (err: unknown) => (logger.warn(`etcd: could not delete the registration (${etcdReason(err)}); it expires with its lease`), true),
      )
      const timeout = delay(2000, false, { ref: false })
      if ((await Promise.race([revoked ?? true, timeout])) === false) logger.warn('etcd: deleting the registration timed out; it expires with its lease')
    },
  }
}
