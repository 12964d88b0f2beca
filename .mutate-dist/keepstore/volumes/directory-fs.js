import { createHash, randomBytes } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import { KeepError } from '../../shared/errors.js';
import { READ_CHUNK_SIZE } from './hashing-stream.js';
/** Runs file-system steps and maps their errors to KeepErrors. */
export class FsRunner {
    uuid;
    faults;
    constructor(uuid, faults) {
        this.uuid = uuid;
        this.faults = faults;
    }
    /** `absent`: what ENOENT means here (a missing block, or a broken volume). */
    async run(op, path, fn, absent = 'KEEP_BLOCK_NOT_FOUND') {
        try {
            if (this.faults)
                await this.faults(op, path);
            return await fn();
        }
        catch (err) {
            throw this.map(err, op, path, absent);
        }
    }
    /** Like run(), but an absent path resolves undefined. */
    async optional(op, path, fn) {
        try {
            return await this.run(op, path, fn);
        }
        catch (err) {
            if (err instanceof KeepError && err.code === 'KEEP_BLOCK_NOT_FOUND')
                return undefined;
            throw err;
        }
    }
    /** ENOENT → `absent`, ENOSPC/EDQUOT → KEEP_FULL, anything else → KEEP_IO. */
    map(err, op, path, absent = 'KEEP_BLOCK_NOT_FOUND') {
        if (err instanceof KeepError)
            return err;
        const errno = errnoOf(err);
        const code = errno === 'ENOENT' ? absent : errno === 'ENOSPC' || errno === 'EDQUOT' ? 'KEEP_FULL' : 'KEEP_IO';
        return new KeepError(code, `volume ${this.uuid}: ${op} ${path}: ${errno ?? String(err)}`, { cause: err });
    }
    /** Makes renames and new entries in `dir` durable. */
    async syncDir(dir) {
        const handle = await this.run('open', dir, () => open(dir, 'r'), 'KEEP_IO');
        try {
            await this.run('fsync', dir, () => handle.sync(), 'KEEP_IO');
        }
        finally {
            await handle.close();
        }
    }
    /** Removes a file, ignoring one that is already gone; other failures are only worth a retry later. */
    async discard(path) {
        await this.optional('unlink', path, () => unlink(path)).catch(() => undefined);
    }
}
export function errnoOf(err) {
    const code = err?.code;
    return typeof code === 'string' ? code : undefined;
}
/** `.<hash>.tmp-<random>`: hidden from scans by its leading dot. */
export function tempName(hash) {
    return `.${hash}.tmp-${randomBytes(6).toString('hex')}`;
}
export function isTempName(name) {
    return name.startsWith('.') && name.includes('.tmp-');
}
const TRASH_RE = /^([0-9a-f]{32})\.trash\.(\d+)(?:\.(\d+))?$/;
/** A trashed copy's name: `<hash>.trash.<deadline>` plus `.<n>` when that name is taken. */
export function trashName(hash, deadline, n) {
    return n === 0 ? `${hash}.trash.${deadline}` : `${hash}.trash.${deadline}.${n}`;
}
export function parseTrashName(name) {
    const m = TRASH_RE.exec(name);
    if (!m)
        return undefined;
    return { hash: m[1], deadline: Number(m[2]), n: Number(m[3] ?? 0) };
}
/**
 * Compares a stored block with a verified candidate for the same hash, reading
 * both in step (never a whole file in memory). Equal bytes → identical;
 * otherwise the stored copy is corrupt unless it has a valid MD5 of `hash`.
 */
export async function compareStored(fs, storedPath, candidatePath, hash) {
    const stored = await fs.run('open', storedPath, () => open(storedPath, 'r'));
    let candidate;
    try {
        candidate = await fs.run('open', candidatePath, () => open(candidatePath, 'r'), 'KEEP_IO');
        const opened = candidate;
        const [a, b] = await fs.run('stat', storedPath, () => Promise.all([stored.stat(), opened.stat()]), 'KEEP_IO');
        let same = a.size === b.size;
        const md5 = createHash('md5');
        const bufA = Buffer.allocUnsafe(READ_CHUNK_SIZE);
        const bufB = Buffer.allocUnsafe(READ_CHUNK_SIZE);
        for (;;) {
            const n = await readFull(fs, stored, storedPath, bufA);
            if (n === 0)
                break;
            md5.update(bufA.subarray(0, n));
            if (same) {
                const m = await readFull(fs, candidate, candidatePath, bufB);
                same = m === n && bufA.subarray(0, n).equals(bufB.subarray(0, n));
            }
        }
        if (same)
            return 'identical';
        return md5.digest('hex') === hash ? 'collision' : 'corrupt';
    }
    finally {
        await stored.close();
        await candidate?.close();
    }
}
/** Fills `buf` unless the file ends first; returns the bytes read. */
export async function readFull(fs, handle, path, buf) {
    let filled = 0;
    while (filled < buf.length) {
        const { bytesRead } = await fs.run('read', path, () => handle.read(buf, filled, buf.length - filled, null));
        if (bytesRead === 0)
            break;
        filled += bytesRead;
    }
    return filled;
}
//# sourceMappingURL=directory-fs.js.map