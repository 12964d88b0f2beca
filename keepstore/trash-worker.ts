import { KeepError, isKeepError } from '../shared/errors.js'
import { parseLocator } from '../shared/locator.js'
import type { Logger } from '../shared/logger.js'
import type { TrashItem } from '../shared/worklist-items.js'
import type { Keepstore } from './keepstore.js'
import type { ItemOutcome } from './worklist.js'

export interface TrashWorkerDeps {
  keepstore: Pick<Keepstore, 'mounts' | 'requireMount' | 'trashCutoff' | 'trashOn' | 'cluster'>
  logger: Logger
}

/**
 * One trash item, with the three guards of PROTOCOL.md §5: (a) block_mtime is
 * older than blobSigningTTL now; (b) the stored mtime equals block_mtime to the
 * nanosecond; (c) the volume re-checks both under its per-hash lock at the
 * moment of trashing (trashOn → Volume.trash guards). Only mounts that allow
 * trash take part; one named that does not fails the item (KEEP_READ_ONLY).
 */
export function createTrashHandler(deps: TrashWorkerDeps): (item: TrashItem) => Promise<ItemOutcome> {
  const { keepstore, logger } = deps
  return async (item) => {
    const hash = parseLocator(item.locator).hash
    if (!keepstore.cluster.blobTrash) {
      logger.info({ hash, mount: item.mount_uuid ?? null }, 'trash item skipped: blobTrash is off')
      return 'skipped'
    }
    const cutoff = keepstore.trashCutoff()
    if (item.block_mtime >= cutoff) {
      logger.info({ hash, block_mtime: String(item.block_mtime) }, 'trash item skipped: block is younger than blobSigningTTL')
      return 'skipped'
    }
    const mounts = item.mount_uuid ? [keepstore.requireMount(item.mount_uuid)] : keepstore.mounts.filter((m) => m.allowTrash)
    if (item.mount_uuid && !mounts[0]!.allowTrash) {
      // Keep ignores such an item; it is counted failed here, with its reason, so the operator sees it.
      throw new KeepError('KEEP_READ_ONLY', `volume ${item.mount_uuid} is read-only and does not allow trash (allowTrashWhenReadOnly)`)
    }
    let trashed = 0
    for (const mount of mounts) {
      try {
        const stat = await mount.volume.stat(hash)
        if (stat.mtime !== item.block_mtime) {
          logger.info({ hash, mount: mount.uuid, stored: String(stat.mtime), block_mtime: String(item.block_mtime) }, 'trash item skipped: mtime differs')
          continue
        }
        const guards = { ifMtime: item.block_mtime, notNewerThan: cutoff - 1n }
        if (await keepstore.trashOn(mount, hash, guards, 'trash list')) trashed++
      } catch (err) {
        if (!isKeepError(err, 'KEEP_BLOCK_NOT_FOUND')) throw err
      }
    }
    return trashed > 0 ? 'done' : 'skipped'
  }
}
