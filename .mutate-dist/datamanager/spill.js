import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Level } from 'level';
export async function createSpill(dir) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const dbs = [];
    return {
        async open(name) {
            // LevelDB maps every open table file into memory, and mapped pages count
            // as RSS: few open files of small size keep that bounded (~64 × 256 KiB, plus up to a few 4 MiB level-0 files)
            // however large the spill grows.
            const db = new Level(path.join(dir, name), {
                keyEncoding: 'utf8',
                valueEncoding: 'utf8',
                compression: false,
                maxOpenFiles: 64,
                maxFileSize: 256 << 10,
                writeBufferSize: 4 << 20,
                cacheSize: 4 << 20,
            });
            await db.open();
            dbs.push(db);
            return db;
        },
        async destroy() {
            await Promise.allSettled(dbs.map((db) => db.close()));
            await rm(dir, { recursive: true, force: true });
        },
    };
}
//# sourceMappingURL=spill.js.map