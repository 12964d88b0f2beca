import os from 'node:os'
import type { Etcd3 } from 'etcd3'
import { etcdReason } from '../shared/etcd-client.js'
import { KeepError } from '../shared/errors.js'
import type { Logger } from '../shared/logger.js'
import type { Lock, LockHandle } from './lock.js'

export interface EtcdLockOptions {
  /** `<prefix>datamanager/lock`. */
  key: string
  ttlSeconds: number
  logger: Logger
}

/**
 * The cluster-wide datamanager lock (DESIGN §7): the key is created only if
 * absent (a transaction), under a lease kept alive while held. Its create
 * revision is the run's fence (PROTOCOL §4): etcd revisions only grow, so a
 * later holder always has a higher one. The handle's `lost` signal aborts
 * as soon as the lock may have expired — the lease reported lost, or no
 * keepalive answered within the TTL of the last one sent — so the holder
 * stops sending before a newer holder can be refused by nobody.
 *
 * `tryAcquire` throws `KEEP_UNAVAILABLE` when etcd does not answer: no lock,
 * no run.
 */
export function createEtcdLock(client: Etcd3, options: EtcdLockOptions): Lock {
  const { key, ttlSeconds, logger } = options
  const holder = JSON.stringify({ host: os.hostname(), pid: process.pid, since: new Date().toISOString() })
  return {
    description: `etcd ${key}`,
    async tryAcquire() {
      const lease = client.lease(ttlSeconds)
      // The lease cannot outlive grant + TTL unless a keepalive sent later answers.
      let renewedFrom = Date.now()
      lease.on('lost', () => undefined) // reported through the handle below; never an unhandled event
      let created
      try {
        const leaseId = await lease.grant()
        created = await client.if(key, 'Create', '==', 0).then(client.put(key).value(holder).lease(leaseId)).commit()
      } catch (err) {
        await lease.revoke().catch(() => undefined)
        throw new KeepError('KEEP_UNAVAILABLE', `etcd: cannot take the lock ${key}: ${etcdReason(err)}`, { cause: err })
      }
      if (!created.succeeded) {
        await lease.revoke().catch(() => undefined)
        return undefined
      }
      const fence = created.header.revision
      const lost = new AbortController()
      let timer: NodeJS.Timeout | undefined
      const lose = (reason: string): void => {
        clearTimeout(timer)
        if (lost.signal.aborted) return
        logger.error({ lock: key, fence }, `datamanager lock lost while held: ${reason}`)
        lost.abort(new KeepError('KEEP_UNAVAILABLE', `lock ${key} lost: ${reason}`))
      }
      const arm = (): void => {
        clearTimeout(timer)
        timer = setTimeout(() => lose(`no keepalive answered within ${ttlSeconds} s`), Math.max(0, renewedFrom + ttlSeconds * 1000 - Date.now()))
      }
      let firedAt = renewedFrom
      lease.on('keepaliveFired', () => (firedAt = Date.now()))
      lease.on('keepaliveSucceeded', () => {
        renewedFrom = firedAt
        arm()
      })
      lease.on('lost', (err) => lose(etcdReason(err)))
      arm()
      let released: Promise<void> | undefined
      const handle: LockHandle = {
        fence,
        lost: lost.signal,
        release: () =>
          (released ??= (async () => {
            clearTimeout(timer)
            // Revoking deletes the key: the next holder need not wait for the TTL.
            await lease.revoke().catch((err: unknown) => logger.warn(`etcd: could not release the lock (${etcdReason(err)}); it expires with its lease`))
          })()),
      }
      return handle
    },
  }
}
