import { KeepError, isKeepError } from '../shared/errors.js';
import { mountOrder } from '../shared/rendezvous.js';
import { createSigner } from '../shared/signer.js';
import { mergeSorted } from '../shared/merge-sorted.js';
import { firstChunk } from './first-chunk.js';
const NS_PER_MS = 1000000n;
/**
 * The keepstore's core: blocks across mounts in rendezvous order, signatures,
 * storage classes, trash. It knows nothing about HTTP.
 */
export class Keepstore {
    uuid;
    mounts;
    cluster;
    signer;
    logger;
    now;
    byUuid;
    constructor(options) {
        this.uuid = options.uuid;
        this.mounts = [...options.mounts].sort((a, b) => (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0));
        this.byUuid = new Map(this.mounts.map((m) => [m.uuid, m]));
        this.cluster = options.cluster;
        this.logger = options.logger;
        this.now = options.now ?? Date.now;
        const c = options.cluster;
        this.signer =
            c.blobSigning && c.blobSigningKey !== undefined
                ? createSigner({
                    key: c.blobSigningKey,
                    ttlSeconds: c.blobSigningTTLSeconds,
                    maxClockSkewSeconds: Math.floor(c.maxClockSkewMs / 1000),
                    now: this.now,
                })
                : undefined;
    }
    mount(uuid) {
        return this.byUuid.get(uuid);
    }
    /** Mounts in rendezvous order for this block (PROTOCOL.md §6). */
    orderedMounts(hash) {
        return mountOrder(hash, this.mounts);
    }
    /** Permission to read (PROTOCOL.md §2), checked before any disk access. */
    checkRead(locator, token) {
        this.signer?.verify(locator, token);
    }
    /** `<hash>+<size>`, signed for `token` when signing is on and a token was given. */
    locatorFor(hash, size, token) {
        const bare = `${hash}+${size}`;
        return this.signer && token ? this.signer.sign(bare, token) : bare;
    }
    /** Nanosecond instant before which a block is older than blobSigningTTL. */
    trashCutoff() {
        return BigInt(this.now()) * NS_PER_MS - BigInt(this.cluster.blobSigningTTLSeconds) * 1000000000n;
    }
    async put(hash, body, options = {}) {
        const ordered = this.orderedMounts(hash).filter((m) => m.allowWrite);
        const classes = options.classes?.length ? [...new Set(options.classes)] : undefined;
        for (const cls of classes ?? []) {
            if (!ordered.some((m) => m.hasClass(cls))) {
                throw new KeepError('KEEP_FULL', `no writable volume has storage class ${cls}`);
            }
        }
        await Promise.all(ordered.map((m) => m.refresh()));
        // A mount that already holds the block goes first: the volume then only touches it.
        // (With one writable mount there is nothing to reorder: the volume itself touches identical bytes.)
        const held = ordered.length > 1 ? await Promise.all(ordered.map((m) => this.holds(m, hash))) : [false];
        const candidates = [...ordered.filter((_, i) => held[i]), ...ordered.filter((_, i) => !held[i])].filter((m) => m.state === 'ok');
        const wanted = new Set(classes ?? []);
        const covers = (m) => !classes || m.storageClasses.some((c) => wanted.has(c));
        const first = candidates.find(covers);
        if (!first)
            throw this.noMountError(ordered);
        const written = await this.writeOn(first, hash, body, options);
        const result = { size: written.size, replicas: 0, classesConfirmed: {} };
        this.confirm(result, first);
        for (const c of first.storageClasses)
            wanted.delete(c);
        // Further classes get a copy made from the replica just written.
        for (const m of candidates) {
            if (!classes || wanted.size === 0)
                break;
            if (m === first || !covers(m))
                continue;
            try {
                const { stream } = await first.volume.read(hash, options.signal ? { signal: options.signal } : {});
                await this.writeOn(m, hash, stream, { ...options, expectedSize: written.size });
                this.confirm(result, m);
                for (const c of m.storageClasses)
                    wanted.delete(c);
            }
            catch (err) {
                this.logger.warn({ err, hash, mount: m.uuid }, 'copy to a further storage class failed');
            }
        }
        return result;
    }
    /** Writes a block to one given mount (or the best writable one), as the pull worker does. */
    async writeTo(mountUuid, hash, body, options = {}) {
        const mount = mountUuid ? this.requireMount(mountUuid) : await this.firstWritable(hash);
        if (!mount.allowWrite)
            throw new KeepError('KEEP_READ_ONLY', `volume ${mount.uuid} is read-only`);
        await this.writeOn(mount, hash, body, options);
        return mount;
    }
    /** Whether a mount (or, without one, the mount a pull would write to) already holds the block. */
    async holdsOn(mountUuid, hash) {
        const mount = mountUuid ? this.requireMount(mountUuid) : await this.firstWritable(hash);
        return this.holds(mount, hash);
    }
    /**
     * Opens a block for GET: mounts in rendezvous order; a copy that is absent,
     * unreadable or fails its hash before the first byte goes out is skipped.
     */
    async open(hash, signal) {
        let lastError;
        for (const mount of this.orderedMounts(hash)) {
            try {
                const r = await mount.volume.read(hash, signal ? { signal } : {});
                const first = await firstChunk(r.stream);
                mount.recordSuccess();
                return { hash, size: r.size, mtime: r.mtime, mount, first, rest: r.stream };
            }
            catch (err) {
                if (!isKeepError(err, 'KEEP_BLOCK_NOT_FOUND')) {
                    lastError = err;
                    this.noteReadError(mount, hash, err);
                }
            }
        }
        throw lastError ?? new KeepError('KEEP_BLOCK_NOT_FOUND', 'block not found');
    }
    /** HEAD: the block exists and its bytes verify on at least one mount. */
    async head(hash, signal) {
        let lastError;
        for (const mount of this.orderedMounts(hash)) {
            try {
                const r = await mount.volume.read(hash, signal ? { signal } : {});
                for await (const _ of r.stream)
                    void _;
                return { hash, size: r.size, mtime: r.mtime };
            }
            catch (err) {
                if (!isKeepError(err, 'KEEP_BLOCK_NOT_FOUND')) {
                    lastError = err;
                    this.noteReadError(mount, hash, err);
                }
            }
        }
        throw lastError ?? new KeepError('KEEP_BLOCK_NOT_FOUND', 'block not found');
    }
    /** TOUCH: mtime = now on the first mount (rendezvous order) holding it. */
    async touch(hash) {
        for (const mount of this.orderedMounts(hash)) {
            if (!mount.allowWrite)
                continue;
            try {
                return await mount.volume.touch(hash);
            }
            catch (err) {
                if (!isKeepError(err, 'KEEP_BLOCK_NOT_FOUND'))
                    throw err;
            }
        }
        throw new KeepError('KEEP_BLOCK_NOT_FOUND', 'block not found');
    }
    /**
     * DELETE: trash the block on every trashable mount where it is older than the
     * TTL. A younger copy is left alone (still a success); absent everywhere → 404.
     */
    async delete(hash) {
        if (!this.cluster.blobTrash)
            throw new KeepError('KEEP_METHOD_NOT_ALLOWED', 'trash is disabled (blobTrash: false)');
        let found = false;
        let trashed = 0;
        let kept = 0;
        for (const mount of this.mounts) {
            let stat;
            try {
                stat = await mount.volume.stat(hash);
            }
            catch (err) {
                if (isKeepError(err, 'KEEP_BLOCK_NOT_FOUND'))
                    continue;
                throw err;
            }
            found = true;
            if (mount.allowWrite && (await this.trashOn(mount, hash, { notNewerThan: this.trashCutoff() }, 'delete', stat.mtime)))
                trashed++;
            else
                kept++;
        }
        if (!found)
            throw new KeepError('KEEP_BLOCK_NOT_FOUND', 'block not found');
        return { trashed, kept };
    }
    /**
     * Trash under the volume's lock with the guards given (the volume re-checks
     * them at the moment of trashing). Returns whether it was trashed.
     */
    async trashOn(mount, hash, guards, reason, seenMtime) {
        const nowS = Math.floor(this.now() / 1000);
        const lifetimeS = Math.ceil(this.cluster.blobTrashLifetimeMs / 1000);
        const ok = await mount.volume.trash(hash, { ...guards, deadline: nowS + lifetimeS });
        if (ok) {
            this.logger.info({ audit: 'trash', hash, mount: mount.uuid, mtime: String(guards.ifMtime ?? seenMtime ?? ''), reason }, 'block trashed');
            if (lifetimeS === 0)
                await mount.volume.emptyTrash(nowS);
        }
        return ok;
    }
    async untrash(hash) {
        let restored = 0;
        for (const mount of this.mounts) {
            if (!mount.allowWrite)
                continue;
            try {
                await mount.volume.untrash(hash);
                restored++;
                this.logger.info({ audit: 'untrash', hash, mount: mount.uuid }, 'block untrashed');
            }
            catch (err) {
                if (!isKeepError(err, 'KEEP_BLOCK_NOT_FOUND'))
                    throw err;
            }
        }
        if (restored === 0)
            throw new KeepError('KEEP_BLOCK_NOT_FOUND', 'no trashed copy of the block');
        return restored;
    }
    /** Index of every mount (or one), merged into ascending hash order: one entry per stored copy. */
    index(prefix, mountUuid, signal) {
        const mounts = mountUuid ? [this.requireMount(mountUuid)] : this.mounts;
        const sources = mounts.map((m) => m.volume.index(prefix, signal ? { signal } : {}));
        if (sources.length === 1)
            return sources[0];
        return mergeSorted(sources, (a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
    }
    /** Deletes trashed copies whose lifetime is over, on every writable mount. */
    async emptyTrash() {
        const nowS = Math.floor(this.now() / 1000);
        let deleted = 0;
        for (const mount of this.mounts) {
            if (!mount.allowWrite)
                continue;
            try {
                deleted += await mount.volume.emptyTrash(nowS);
            }
            catch (err) {
                mount.recordError(err);
                this.logger.error({ err, mount: mount.uuid }, 'emptying trash failed');
            }
        }
        return deleted;
    }
    requireMount(uuid) {
        const m = this.byUuid.get(uuid);
        if (!m)
            throw new KeepError('KEEP_NOT_FOUND', `no mount ${uuid} on this keepstore`);
        return m;
    }
    async close() {
        await Promise.allSettled(this.mounts.map((m) => m.volume.close()));
    }
    async firstWritable(hash) {
        const ordered = this.orderedMounts(hash).filter((m) => m.allowWrite);
        await Promise.all(ordered.map((m) => m.refresh()));
        const m = ordered.find((x) => x.state === 'ok');
        if (!m)
            throw this.noMountError(ordered);
        return m;
    }
    async holds(mount, hash) {
        try {
            await mount.volume.stat(hash);
            return true;
        }
        catch (err) {
            if (isKeepError(err, 'KEEP_BLOCK_NOT_FOUND'))
                return false;
            mount.recordError(err);
            return false;
        }
    }
    async writeOn(mount, hash, body, options) {
        try {
            const r = await mount.volume.write(hash, body, {
                ...(options.expectedSize !== undefined ? { expectedSize: options.expectedSize } : {}),
                ...(options.signal ? { signal: options.signal } : {}),
            });
            mount.recordSuccess();
            return r;
        }
        catch (err) {
            mount.recordError(err);
            throw err;
        }
    }
    confirm(result, mount) {
        result.replicas += mount.replication;
        for (const c of mount.storageClasses)
            result.classesConfirmed[c] = (result.classesConfirmed[c] ?? 0) + mount.replication;
    }
    noMountError(writable) {
        if (writable.length > 0 && writable.every((m) => m.state === 'full')) {
            return new KeepError('KEEP_FULL', 'every writable volume is full');
        }
        return new KeepError('KEEP_UNAVAILABLE', 'no writable volume is available');
    }
    noteReadError(mount, hash, err) {
        if (isKeepError(err, 'KEEP_CORRUPT')) {
            mount.errors++;
            this.logger.error({ hash, mount: mount.uuid }, 'stored block fails its hash');
        }
        else {
            mount.recordError(err);
            this.logger.error({ err, hash, mount: mount.uuid }, 'read failed');
        }
    }
}
//# sourceMappingURL=keepstore.js.map