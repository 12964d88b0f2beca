import { KeepError } from '../../shared/errors.js'
import { type FaultHook, createDirectoryVolume } from './directory-volume.js'
import { createMemoryVolume } from './memory-volume.js'
import type { Volume } from './volume.js'

/** The part of a config file's volume entry that picks and sets up the driver. */
export interface VolumeConfig {
  uuid: string
  driver: 'directory' | 'memory'
  root?: string | undefined
  readOnly: boolean
  allowTrashWhenReadOnly?: boolean
}

/**
 * Builds the driver a config entry names (not opened yet: call `open()`).
 * A directory volume without a root is a KEEP_CONFIG error.
 */
export function createVolume(config: VolumeConfig, options: { now?: () => bigint; faults?: FaultHook; indexRescanIntervalMs?: number } = {}): Volume {
  const clock = options.now ? { now: options.now } : {}
  const access = { readOnly: config.readOnly, allowTrashWhenReadOnly: config.allowTrashWhenReadOnly ?? false }
  if (config.driver === 'memory') return createMemoryVolume({ uuid: config.uuid, ...access, ...clock })
  if (!config.root) throw new KeepError('KEEP_CONFIG', `volume ${config.uuid}: driver directory needs a root`)
  const faults = options.faults ? { faults: options.faults } : {}
  const rescan = options.indexRescanIntervalMs !== undefined ? { indexRescanIntervalMs: options.indexRescanIntervalMs } : {}
  return createDirectoryVolume({ uuid: config.uuid, root: config.root, ...access, ...clock, ...faults, ...rescan })
}
