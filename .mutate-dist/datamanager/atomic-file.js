import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
const FLUSH_CHARS = 256 * 1024;
export async function createAtomicWriter(file) {
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
    const handle = await open(tmp, 'w', 0o644);
    let pending = '';
    let closed = false;
    const flush = async () => {
        if (pending === '')
            return;
        const text = pending;
        pending = '';
        await handle.write(text);
    };
    return {
        async write(text) {
            pending += text;
            if (pending.length >= FLUSH_CHARS)
                await flush();
        },
        async commit() {
            await flush();
            await handle.sync();
            await handle.close();
            closed = true;
            await rename(tmp, file);
            await syncDirectory(path.dirname(file));
        },
        async abort() {
            if (!closed)
                await handle.close().catch(() => { });
            closed = true;
            await unlink(tmp).catch(() => { });
        },
    };
}
/** Writes `text` to `file` atomically (see {@link createAtomicWriter}). */
export async function writeFileAtomic(file, text) {
    const writer = await createAtomicWriter(file);
    try {
        await writer.write(text);
        await writer.commit();
    }
    catch (err) {
        await writer.abort();
        throw err;
    }
}
async function syncDirectory(dir) {
    const handle = await open(dir, 'r');
    try {
        await handle.sync();
    }
    catch {
        // Some file systems refuse fsync on a directory; the rename is still atomic.
    }
    finally {
        await handle.close();
    }
}
//# sourceMappingURL=atomic-file.js.map