import { statSync } from 'node:fs';
import { lstat, mkdir, open, rename, stat, statfs, unlink, utimes } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { KeepError } from '../../shared/errors.js';
import { isHash } from '../../shared/hash.js';
import { KeyedMutex } from '../../shared/keyed-mutex.js';
import { claimRoot, removeStaleTemps } from './directory-claim.js';
import { FsRunner, compareStored, errnoOf, parseTrashName, readFull, tempName, trashName, } from './directory-fs.js';
import { blockDirs, dirEntries, scanIndex } from './directory-scan.js';
import { READ_CHUNK_SIZE, consumeVerified, createVerifiedStream } from './hashing-stream.js';
/**
 * A volume in a directory on a local disk: `root/<hash[0:3]>/<hash>`, written
 * through a hidden temp file that is fsynced and renamed into place, trashed
 * by renaming to `<hash>.trash.<deadline>`.
 */
export function createDirectoryVolume(options) {
    return new DirectoryVolume(options);
}
class DirectoryVolume {
    driver = 'directory';
    uuid;
    readOnly;
    root;
    now;
    hostname;
    fs;
    locks = new KeyedMutex();
    knownDirs = new Set();
    knownDeviceId;
    constructor(options) {
        this.uuid = options.uuid;
        this.root = options.root.replace(/(.)\/+$/, '$1');
        this.readOnly = options.readOnly ?? false;
        this.now = options.now;
        this.hostname = options.hostname ?? osHostname();
        this.fs = new FsRunner(options.uuid, options.faults);
    }
    get deviceId() {
        if (this.knownDeviceId === undefined) {
            const st = statSync(this.root, { bigint: true, throwIfNoEntry: false });
            if (!st)
                return `${this.hostname}:unknown:${this.root}`;
            this.knownDeviceId = `${this.hostname}:${st.dev}:${st.ino}`;
        }
        return this.knownDeviceId;
    }
    async open() {
        let st;
        try {
            st = await stat(this.root, { bigint: true });
        }
        catch (err) {
            const what = errnoOf(err) === 'ENOENT' ? 'does not exist' : `cannot be read (${errnoOf(err) ?? String(err)})`;
            throw new KeepError('KEEP_CONFIG', `volume ${this.uuid}: root ${this.root} ${what}`, { cause: err });
        }
        if (!st.isDirectory())
            throw new KeepError('KEEP_CONFIG', `volume ${this.uuid}: root ${this.root} is not a directory`);
        this.knownDeviceId = `${this.hostname}:${st.dev}:${st.ino}`;
        await claimRoot(this.fs, this.root, this.uuid, this.readOnly);
        if (!this.readOnly)
            await removeStaleTemps(this.fs, this.root);
    }
    /** Nothing to release: every operation opens and closes its own files. */
    async close() { }
    async status() {
        const s = await this.fs.run('statfs', this.root, () => statfs(this.root, { bigint: true }), 'KEEP_IO');
        return { freeBytes: Number(s.bavail * s.bsize), totalBytes: Number(s.blocks * s.bsize) };
    }
    async read(hash, options = {}) {
        const path = this.blockPath(hash);
        const handle = await this.fs.run('open', path, () => open(path, 'r'));
        let st;
        try {
            st = await this.fs.run('stat', path, () => handle.stat({ bigint: true }));
        }
        catch (err) {
            await handle.close();
            throw err;
        }
        const size = Number(st.size);
        let remaining = size;
        const stream = createVerifiedStream({
            next: async () => {
                // A file longer than its stat says is read on, so the length check catches it.
                const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK_SIZE, Math.max(remaining, 4096)));
                const n = await readFull(this.fs, handle, path, buf);
                remaining -= n;
                return n === 0 ? null : buf.subarray(0, n);
            },
            close: () => handle.close(),
        }, { hash, size, signal: options.signal, mapError: (err) => this.fs.map(err, 'read', path, 'KEEP_IO') });
        return { hash, size, mtime: st.mtimeNs, stream };
    }
    async stat(hash) {
        const path = this.blockPath(hash);
        const st = await this.fs.run('stat', path, () => stat(path, { bigint: true }));
        return { hash, size: Number(st.size), mtime: st.mtimeNs };
    }
    async write(hash, source, options = {}) {
        this.assertWritable();
        this.blockPath(hash);
        const dir = this.dirOf(hash);
        await this.ensureDir(dir);
        const temp = `${dir}/${tempName(hash)}`;
        const openTemp = () => this.fs.run('open', temp, () => open(temp, 'wx'), 'KEEP_IO');
        const handle = await openTemp().catch(async (err) => {
            // The directory was known to exist; if someone removed it, make it again once.
            if (!this.knownDirs.delete(dir))
                throw err;
            await this.ensureDir(dir);
            return openTemp();
        });
        let settled = false;
        const writer = new BatchedWriter((chunks) => this.writeChunks(handle, temp, chunks));
        try {
            try {
                await consumeVerified(source, {
                    hash,
                    expectedSize: options.expectedSize,
                    signal: options.signal,
                    sink: (chunk) => writer.push(chunk),
                });
                await writer.end();
                const t = this.nowSeconds();
                if (t !== undefined)
                    await this.fs.run('utimes', temp, () => handle.utimes(t, t), 'KEEP_IO');
                await this.fs.run('fsync', temp, () => handle.sync(), 'KEEP_IO');
            }
            finally {
                await writer.settled();
                // Once fsync succeeded the bytes are safe; a failing close changes nothing.
                await handle.close().catch(() => undefined);
            }
            const result = await this.locks.run(hash, () => this.commit(hash, temp));
            settled = true;
            return result;
        }
        finally {
            if (!settled)
                await this.fs.discard(temp);
        }
    }
    async touch(hash) {
        this.assertWritable();
        return this.locks.run(hash, () => this.touchLocked(hash));
    }
    async trash(hash, options) {
        this.assertWritable();
        return this.locks.run(hash, async () => {
            const { mtime } = await this.stat(hash);
            if (options.ifMtime !== undefined && mtime !== options.ifMtime)
                return false;
            if (options.notNewerThan !== undefined && mtime > options.notNewerThan)
                return false;
            const dir = this.dirOf(hash);
            const deadline = Math.floor(options.deadline);
            let target = '';
            for (let n = 0; !target; n++) {
                const candidate = `${dir}/${trashName(hash, deadline, n)}`;
                if (!(await this.fs.optional('stat', candidate, () => lstat(candidate))))
                    target = candidate;
            }
            const path = this.blockPath(hash);
            await this.fs.run('rename', path, () => rename(path, target));
            await this.fs.syncDir(dir);
            return true;
        });
    }
    async untrash(hash) {
        this.assertWritable();
        return this.locks.run(hash, async () => {
            const dir = this.dirOf(hash);
            const copies = [];
            for (const name of await dirEntries(this.fs, dir)) {
                const parsed = parseTrashName(name);
                if (parsed?.hash !== hash)
                    continue;
                const path = `${dir}/${name}`;
                const st = await this.fs.optional('stat', path, () => stat(path, { bigint: true }));
                if (st)
                    copies.push({ ...parsed, path, mtime: st.mtimeNs });
            }
            if (copies.length === 0)
                throw new KeepError('KEEP_BLOCK_NOT_FOUND', `block ${hash} is not trashed on volume ${this.uuid}`);
            const live = await this.stat(hash).catch((err) => {
                if (err instanceof KeepError && err.code === 'KEEP_BLOCK_NOT_FOUND')
                    return undefined;
                throw err;
            });
            if (live)
                return live;
            copies.sort((a, b) => a.deadline - b.deadline || (a.mtime < b.mtime ? -1 : a.mtime > b.mtime ? 1 : a.n - b.n));
            const newest = copies[copies.length - 1];
            const path = this.blockPath(hash);
            await this.fs.run('rename', newest.path, () => rename(newest.path, path));
            await this.fs.syncDir(dir);
            return this.stat(hash);
        });
    }
    async emptyTrash(nowSeconds) {
        if (this.readOnly)
            return 0;
        let deleted = 0;
        for (const sub of await blockDirs(this.fs, this.root)) {
            const dir = `${this.root}/${sub}`;
            for (const name of await dirEntries(this.fs, dir)) {
                const parsed = parseTrashName(name);
                if (!parsed || parsed.deadline > nowSeconds)
                    continue;
                const path = `${dir}/${name}`;
                const gone = await this.locks.run(parsed.hash, () => this.fs.optional('unlink', path, () => unlink(path).then(() => true)));
                if (gone)
                    deleted++;
            }
        }
        return deleted;
    }
    index(prefix, options = {}) {
        return scanIndex(this.fs, this.root, prefix, options.signal);
    }
    /** Under the hash's lock: moves a verified temp file into place, unless the volume already has these bytes. */
    async commit(hash, temp) {
        const path = this.blockPath(hash);
        // Usually absent: a sync stat that returns undefined costs far less than an ENOENT error object.
        if (await this.fs.run('stat', path, async () => statSync(path, { throwIfNoEntry: false }))) {
            const comparison = await compareStored(this.fs, path, temp, hash);
            if (comparison === 'identical') {
                await this.fs.discard(temp);
                return { ...(await this.touchLocked(hash)), outcome: 'touched' };
            }
            if (comparison === 'collision') {
                throw new KeepError('KEEP_HASH_COLLISION', `volume ${this.uuid} holds different bytes with MD5 ${hash}`);
            }
        }
        await this.fs.run('rename', temp, () => rename(temp, path), 'KEEP_IO');
        await this.fs.syncDir(this.dirOf(hash));
        return { ...(await this.stat(hash)), outcome: 'written' };
    }
    async touchLocked(hash) {
        const path = this.blockPath(hash);
        const t = this.nowSeconds() ?? Date.now() / 1000;
        await this.fs.run('utimes', path, () => utimes(path, t, t));
        return this.stat(hash);
    }
    /** One writev for a batch of chunks; a short write finishes with plain writes. */
    async writeChunks(handle, path, chunks) {
        const total = chunks.reduce((n, c) => n + c.length, 0);
        const { bytesWritten } = await this.fs.run('write', path, () => handle.writev(chunks), 'KEEP_IO');
        if (bytesWritten < total)
            await this.writeAll(handle, path, Buffer.concat(chunks).subarray(bytesWritten));
    }
    async writeAll(handle, path, chunk) {
        let offset = 0;
        while (offset < chunk.length) {
            const { bytesWritten } = await this.fs.run('write', path, () => handle.write(chunk, offset, chunk.length - offset, null), 'KEEP_IO');
            offset += bytesWritten;
        }
    }
    /** Creates `dir` if needed; a new directory's entry in the root is made durable too. */
    async ensureDir(dir) {
        if (this.knownDirs.has(dir))
            return; // at most 4096 prefix directories: no mkdir per PUT
        const created = await this.fs.run('mkdir', dir, () => mkdir(dir).then(() => true, (err) => {
            if (errnoOf(err) === 'EEXIST')
                return false;
            throw err;
        }), 'KEEP_IO');
        if (created)
            await this.fs.syncDir(this.root);
        this.knownDirs.add(dir);
    }
    /** The injected clock in (float) seconds, as utimes takes it; undefined without one. */
    nowSeconds() {
        if (!this.now)
            return undefined;
        const ns = this.now();
        return Number(ns / 1000000000n) + Number(ns % 1000000000n) / 1e9;
    }
    dirOf(hash) {
        return `${this.root}/${hash.slice(0, 3)}`;
    }
    /** Paths are built from the hash, so it is checked here even though callers validate it. */
    blockPath(hash) {
        if (!isHash(hash))
            throw new KeepError('KEEP_INVALID_LOCATOR', `not a block hash: ${JSON.stringify(hash)}`);
        return `${this.root}/${hash.slice(0, 3)}/${hash}`;
    }
    assertWritable() {
        if (this.readOnly)
            throw new KeepError('KEEP_READ_ONLY', `volume ${this.uuid} is read-only`);
    }
}
/** Bytes gathered before one writev: fewer thread-pool round trips than a write per socket chunk. */
const WRITE_BATCH_BYTES = 1024 * 1024;
/**
 * Gathers body chunks and writes them in batches, one batch in flight while
 * the next is read from the socket (so reading and writing overlap, as a
 * piped stream would). Memory per write: at most two batches.
 */
class BatchedWriter {
    write;
    pending = [];
    pendingBytes = 0;
    inflight;
    constructor(write) {
        this.write = write;
    }
    async push(chunk) {
        this.pending.push(chunk);
        this.pendingBytes += chunk.length;
        if (this.pendingBytes < WRITE_BATCH_BYTES)
            return;
        if (this.inflight)
            await this.inflight;
        this.inflight = this.write(this.take());
        this.inflight.catch(() => undefined); // rejections surface at the next await
    }
    async end() {
        if (this.inflight)
            await this.inflight;
        this.inflight = undefined;
        if (this.pending.length)
            await this.write(this.take());
    }
    /** Waits for a write still in flight after a failure, so the file is not closed under it. */
    async settled() {
        await this.inflight?.catch(() => undefined);
    }
    take() {
        const chunks = this.pending;
        this.pending = [];
        this.pendingBytes = 0;
        return chunks;
    }
}
//# sourceMappingURL=directory-volume.js.map