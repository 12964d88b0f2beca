import type { Config } from '../shared/config.js'
import { createEtcdClient, etcdKeys } from '../shared/etcd-client.js'
import type { Logger } from '../shared/logger.js'
import { watchMembership, type MembershipView } from '../shared/membership.js'
import { createEtcdLock } from './etcd-lock.js'
import { combineLocks, createFileLock, type Lock } from './lock.js'

/** How a datamanager process coordinates with the rest of the cluster: its lock, and with etcd who is live. */
export interface Coordination {
  lock: Lock
  /** With `cluster.etcd` only. */
  membership: MembershipView | undefined
  /** Stops watching and closes the etcd client (release any lock handle first). */
  close(): Promise<void>
}

/**
 * The file lock in `datamanager.stateDir`, and with `cluster.etcd` also the
 * cluster-wide lock (its revision fences the lists) and a membership view:
 * what `bin/datamanager` runs with.
 */
export async function createCoordination(config: Config, logger: Logger): Promise<Coordination> {
  const dm = config.datamanager
  if (dm === undefined) throw new Error('createCoordination: no datamanager section')
  const fileLock = createFileLock(dm.stateDir, {
    onCompromised: (err) => logger.error({ err }, 'datamanager lock lost while held'),
  })
  const etcd = config.cluster.etcd
  if (etcd === undefined) return { lock: fileLock, membership: undefined, close: async () => undefined }
  const client = await createEtcdClient(etcd)
  const etcdLock = createEtcdLock(client, { key: etcdKeys.lock(etcd.prefix), ttlSeconds: etcd.leaseTTLSeconds, logger })
  const membership = watchMembership(client, config, { logger })
  return {
    lock: combineLocks(fileLock, etcdLock),
    membership,
    async close() {
      await membership.close()
      client.close()
    },
  }
}
