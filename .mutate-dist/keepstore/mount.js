import { isKeepError } from '../shared/errors.js';
/** Consecutive I/O errors after which a mount is `failed` and leaves the write rotation. */
const FAIL_AFTER_IO_ERRORS = 3;
/** How long a free-space reading is trusted before statfs is asked again. */
const FREE_SPACE_TTL_MS = 5_000;
/**
 * A volume as this keepstore serves it: the driver plus the operator's policy
 * (replication, classes, priority) and health (errors, full, failed).
 */
export class Mount {
    uuid;
    volume;
    replication;
    storageClasses;
    priority;
    readOnly;
    minFreeSpace;
    now;
    errors = 0;
    consecutiveIoErrors = 0;
    freeBytes = Number.POSITIVE_INFINITY;
    totalBytes = 0;
    checkedAt = Number.NEGATIVE_INFINITY;
    markedFull = false;
    constructor(options) {
        this.volume = options.volume;
        this.uuid = options.volume.uuid;
        this.replication = options.replication;
        this.storageClasses = options.storageClasses;
        this.priority = options.priority;
        this.readOnly = options.readOnly || options.volume.readOnly;
        this.minFreeSpace = options.minFreeSpace;
        this.now = options.now ?? Date.now;
    }
    get deviceId() {
        return this.volume.deviceId;
    }
    get allowWrite() {
        return !this.readOnly;
    }
    get state() {
        if (this.consecutiveIoErrors >= FAIL_AFTER_IO_ERRORS)
            return 'failed';
        if (this.markedFull || this.freeBytes < this.minFreeSpace)
            return 'full';
        return 'ok';
    }
    hasClass(cls) {
        return this.storageClasses.includes(cls);
    }
    /** Refreshes the cached free-space reading when it is stale (or when forced). */
    async refresh(force = false) {
        if (!force && this.now() - this.checkedAt < FREE_SPACE_TTL_MS)
            return;
        this.checkedAt = this.now();
        try {
            const s = await this.volume.status();
            this.freeBytes = s.freeBytes;
            this.totalBytes = s.totalBytes;
            this.markedFull = false;
        }
        catch (err) {
            this.recordError(err);
        }
    }
    space() {
        return { freeBytes: Number.isFinite(this.freeBytes) ? this.freeBytes : 0, totalBytes: this.totalBytes };
    }
    /** Feeds an operation's outcome into the health counters. */
    recordError(err) {
        if (isKeepError(err, 'KEEP_FULL')) {
            this.markedFull = true;
            this.checkedAt = this.now();
            return;
        }
        // Only the disk's own failures count; a client hanging up mid-PUT is not the disk's fault.
        if (isKeepError(err, 'KEEP_IO')) {
            this.errors++;
            this.consecutiveIoErrors++;
        }
    }
    recordSuccess() {
        this.consecutiveIoErrors = 0;
    }
    /** The JSON shape of GET /mounts. */
    toJSON() {
        return {
            uuid: this.uuid,
            device_id: this.deviceId,
            allow_write: this.allowWrite,
            allow_trash: this.allowWrite,
            replication: this.replication,
            storage_classes: Object.fromEntries(this.storageClasses.map((c) => [c, true])),
            priority: this.priority,
        };
    }
}
//# sourceMappingURL=mount.js.map