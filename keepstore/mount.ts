import { type Volume, tick } from './volumes/volume.js'
import { isKeepError } from '../shared/errors.js'

/** Consecutive I/O errors after which a mount is `failed` and leaves the write rotation. */
const FAIL_AFTER_IO_ERRORS = 3
/** How long a free-space reading is trusted before statfs is asked again. */
const FREE_SPACE_TTL_MS = 5_000

export type MountState = 'ok' | 'full' | 'failed'

const RESOLVED: Promise<void> = Promise.resolve()

export interface MountOptions {
  volume: Volume
  replication: number
  storageClasses: string[]
  priority: number
  readOnly: boolean
  /** As Keep: a read-only mount that may still be trashed from (and untrashed). */
  allowTrashWhenReadOnly?: boolean
  minFreeSpace: number
  now?: () => number
}

/**
 * A volume as this keepstore serves it: the driver plus the operator's policy
 * (replication, classes, priority) and health (errors, full, failed).
 */
export class Mount {
  readonly uuid: string
  readonly volume: Volume
  readonly replication: number
  readonly storageClasses: string[]
  readonly priority: number
  readonly readOnly: boolean
  private readonly allowTrashWhenReadOnly: boolean
  private readonly minFreeSpace: number
  private readonly now: () => number
  errors = 0
  private consecutiveIoErrors = 0
  private freeBytes = Number.POSITIVE_INFINITY
  private totalBytes = 0
  private checkedAt = Number.NEGATIVE_INFINITY
  private markedFull = false

  constructor(options: MountOptions) {
    this.volume = options.volume
    this.uuid = options.volume.uuid
    this.replication = options.replication
    this.storageClasses = options.storageClasses
    this.priority = options.priority
    this.readOnly = options.readOnly || options.volume.readOnly
    this.allowTrashWhenReadOnly = options.allowTrashWhenReadOnly ?? options.volume.allowTrashWhenReadOnly
    this.minFreeSpace = options.minFreeSpace
    this.now = options.now ?? Date.now
  }

  get deviceId(): string {
    return this.volume.deviceId
  }

  get allowWrite(): boolean {
    return !this.readOnly
  }

  /** Keep's AllowTrash: writable, or read-only with allowTrashWhenReadOnly (trash, untrash, emptying). */
  get allowTrash(): boolean {
    return !this.readOnly || this.allowTrashWhenReadOnly
  }

  get state(): MountState {
    if (this.consecutiveIoErrors >= FAIL_AFTER_IO_ERRORS) return 'failed'
    if (this.markedFull || this.freeBytes < this.minFreeSpace) return 'full'
    return 'ok'
  }

  /**
   * Refreshes the cached free-space reading when it is stale (or when forced).
   * A `failed` mount is probed then: only a successful probe write brings it
   * back into the write rotation (PROTOCOL.md §5), never a successful read.
   */
  refresh(force = false): Promise<void> {
    // Fresh (almost every PUT): no async function to run.
    if (!force && this.now() - this.checkedAt < FREE_SPACE_TTL_MS) return RESOLVED
    return this.reread()
  }

  private async reread(): Promise<void> {
    this.checkedAt = this.now()
    if (this.state === 'failed' && this.allowWrite && this.volume.probe) {
      try {
        await this.volume.probe()
        this.consecutiveIoErrors = 0
      } catch (err) {
        this.recordError(err)
      }
    }
    try {
      const s = await this.volume.status()
      this.freeBytes = s.freeBytes
      this.totalBytes = s.totalBytes
      this.markedFull = false
    } catch (err) {
      this.recordError(err)
    }
  }

  space(): { freeBytes: number; totalBytes: number } {
    return { freeBytes: Number.isFinite(this.freeBytes) ? this.freeBytes : 0, totalBytes: this.totalBytes }
  }

  /** Feeds an operation's outcome into the health counters. */
  recordError(err: unknown): void {
    if (isKeepError(err, 'KEEP_FULL')) {
      this.markedFull = true
      this.checkedAt = this.now()
      return
    }
    // Only the disk's own failures count; a client hanging up mid-PUT is not the disk's fault.
    if (isKeepError(err, 'KEEP_IO')) {
      this.errors++
      this.consecutiveIoErrors++
    }
  }

  /** A stored copy is no block (fails its hash, or is not a regular file): a mount error, and a `corrupt` volume error in Keep's counter. */
  recordCorrupt(): void {
    this.errors++
    tick(this.volume.stats.errors, 'corrupt')
  }

  /** A write succeeded (a read proves nothing about writes, so reads never call this). */
  recordSuccess(): void {
    this.consecutiveIoErrors = 0
  }

  /** The JSON shape of GET /mounts. */
  toJSON(): Record<string, unknown> {
    return {
      uuid: this.uuid,
      device_id: this.deviceId,
      allow_write: this.allowWrite,
      allow_trash: this.allowTrash,
      replication: this.replication,
      storage_classes: Object.fromEntries(this.storageClasses.map((c) => [c, true])),
      priority: this.priority,
    }
  }
}
