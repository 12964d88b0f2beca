import { totalmem } from 'node:os';
import { KeepError } from '../../shared/errors.js';
import { md5hex } from '../../shared/hash.js';
import { KeyedMutex } from '../../shared/keyed-mutex.js';
import { READ_CHUNK_SIZE, consumeVerified, createVerifiedStream } from './hashing-stream.js';
/**
 * A real driver with the directory driver's semantics, kept in a Map: for
 * tests, demos and clusters on one machine. Its contents end with the process.
 */
export function createMemoryVolume(options) {
    return new MemoryVolumeImpl(options);
}
/** Wall clock in ns that never repeats: ties are broken by counting up. */
export function createMonotonicClock() {
    let last = 0n;
    return () => {
        const wall = BigInt(Date.now()) * 1000000n;
        last = wall > last ? wall : last + 1n;
        return last;
    };
}
class MemoryVolumeImpl {
    driver = 'memory';
    uuid;
    readOnly;
    deviceId;
    now;
    capacity;
    live = new Map();
    trashed = new Map();
    locks = new KeyedMutex();
    usedBytes = 0;
    constructor(options) {
        this.uuid = options.uuid;
        this.readOnly = options.readOnly ?? false;
        this.deviceId = `memory:${options.uuid}`;
        this.now = options.now ?? createMonotonicClock();
        this.capacity = options.capacity ?? totalmem();
    }
    async open() { }
    async close() { }
    async status() {
        return { freeBytes: Math.max(0, this.capacity - this.usedBytes), totalBytes: this.capacity };
    }
    async read(hash, options = {}) {
        const { data, mtime } = this.require(hash);
        let offset = 0;
        const stream = createVerifiedStream({
            next: async () => {
                if (offset >= data.length)
                    return null;
                const chunk = data.subarray(offset, offset + READ_CHUNK_SIZE);
                offset += chunk.length;
                return chunk;
            },
            close: async () => { },
        }, { hash, size: data.length, signal: options.signal });
        return { hash, size: data.length, mtime, stream };
    }
    async stat(hash) {
        return this.statOf(hash, this.require(hash));
    }
    async write(hash, source, options = {}) {
        this.assertWritable();
        const chunks = [];
        await consumeVerified(source, {
            hash,
            expectedSize: options.expectedSize,
            signal: options.signal,
            sink: (chunk) => {
                chunks.push(Buffer.from(chunk));
            },
        });
        const data = Buffer.concat(chunks);
        return this.locks.run(hash, async () => {
            const existing = this.live.get(hash);
            if (existing?.data.equals(data)) {
                existing.mtime = this.now();
                return { ...this.statOf(hash, existing), outcome: 'touched' };
            }
            if (existing && md5hex(existing.data) === hash) {
                throw new KeepError('KEEP_HASH_COLLISION', `volume ${this.uuid} holds different bytes with MD5 ${hash}`);
            }
            const growth = data.length - (existing?.data.length ?? 0);
            if (this.usedBytes + growth > this.capacity)
                throw new KeepError('KEEP_FULL', `volume ${this.uuid} is full`);
            const stored = { data, mtime: this.now() };
            this.live.set(hash, stored);
            this.usedBytes += growth;
            return { ...this.statOf(hash, stored), outcome: 'written' };
        });
    }
    async touch(hash) {
        this.assertWritable();
        return this.locks.run(hash, async () => {
            const stored = this.require(hash);
            stored.mtime = this.now();
            return this.statOf(hash, stored);
        });
    }
    async trash(hash, options) {
        this.assertWritable();
        return this.locks.run(hash, async () => {
            const stored = this.require(hash);
            if (options.ifMtime !== undefined && stored.mtime !== options.ifMtime)
                return false;
            if (options.notNewerThan !== undefined && stored.mtime > options.notNewerThan)
                return false;
            this.live.delete(hash);
            const copies = this.trashed.get(hash) ?? [];
            copies.push({ ...stored, deadline: Math.floor(options.deadline) });
            this.trashed.set(hash, copies);
            return true;
        });
    }
    async untrash(hash) {
        this.assertWritable();
        return this.locks.run(hash, async () => {
            const copies = this.trashed.get(hash);
            if (!copies?.length)
                throw this.notFound(hash, 'trashed');
            const live = this.live.get(hash);
            if (live)
                return this.statOf(hash, live);
            let newest = 0;
            copies.forEach((c, i) => {
                const best = copies[newest];
                if (c.deadline > best.deadline || (c.deadline === best.deadline && c.mtime >= best.mtime))
                    newest = i;
            });
            const [restored] = copies.splice(newest, 1);
            if (copies.length === 0)
                this.trashed.delete(hash);
            const stored = { data: restored.data, mtime: restored.mtime };
            this.live.set(hash, stored);
            return this.statOf(hash, stored);
        });
    }
    async emptyTrash(nowSeconds) {
        if (this.readOnly)
            return 0;
        let deleted = 0;
        for (const hash of [...this.trashed.keys()]) {
            await this.locks.run(hash, async () => {
                const copies = this.trashed.get(hash) ?? [];
                const kept = copies.filter((c) => c.deadline > nowSeconds);
                for (const c of copies)
                    if (c.deadline <= nowSeconds)
                        this.usedBytes -= c.data.length;
                deleted += copies.length - kept.length;
                if (kept.length)
                    this.trashed.set(hash, kept);
                else
                    this.trashed.delete(hash);
            });
        }
        return deleted;
    }
    async *index(prefix, options = {}) {
        const hashes = [...this.live.keys()].filter((h) => h.startsWith(prefix)).sort();
        for (const hash of hashes) {
            options.signal?.throwIfAborted();
            const stored = this.live.get(hash);
            if (stored)
                yield this.statOf(hash, stored);
        }
    }
    corruptForTest(hash) {
        const stored = this.require(hash);
        const data = Buffer.from(stored.data);
        if (data.length === 0) {
            stored.data = Buffer.from([0]);
            this.usedBytes += 1;
            return;
        }
        data[data.length - 1] = data[data.length - 1] ^ 1;
        stored.data = data;
    }
    require(hash) {
        const stored = this.live.get(hash);
        if (!stored)
            throw this.notFound(hash, 'stored');
        return stored;
    }
    notFound(hash, what) {
        return new KeepError('KEEP_BLOCK_NOT_FOUND', `block ${hash} is not ${what} on volume ${this.uuid}`);
    }
    assertWritable() {
        if (this.readOnly)
            throw new KeepError('KEEP_READ_ONLY', `volume ${this.uuid} is read-only`);
    }
    statOf(hash, stored) {
        return { hash, size: stored.data.length, mtime: stored.mtime };
    }
}
//# sourceMappingURL=memory-volume.js.map