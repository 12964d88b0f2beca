import { mkdir, readdir } from 'node:fs/promises';
import { Level } from 'level';
import { MemoryLevel } from 'memory-level';
import { KeepError } from '../shared/errors.js';
function configError(path, reason, cause) {
    return new KeepError('KEEP_CONFIG', `state database ${path}: ${reason}`, { cause });
}
/** The innermost message: level wraps the real reason (`LEVEL_LOCKED`, `LEVEL_CORRUPTION`) in `cause`. */
function reasonOf(err) {
    let e = err;
    while (e instanceof Error && e.cause instanceof Error)
        e = e.cause;
    return e instanceof Error ? e.message : String(e);
}
/**
 * LevelDB with `createIfMissing` would start an empty database beside the
 * table files of one whose CURRENT was lost; refuse instead.
 */
async function checkNotOrphaned(dir) {
    const names = await readdir(dir);
    if (names.includes('CURRENT'))
        return;
    const leftovers = names.filter((n) => n.startsWith('MANIFEST-') || n.endsWith('.ldb') || n.endsWith('.log'));
    if (leftovers.length > 0) {
        throw configError(dir, `CURRENT is missing but ${leftovers.length} database file(s) remain (${leftovers[0]}); restore or move them`);
    }
}
async function openDirectory(dir) {
    try {
        await mkdir(dir, { recursive: true });
        await checkNotOrphaned(dir);
    }
    catch (err) {
        if (err instanceof KeepError)
            throw err;
        throw configError(dir, reasonOf(err), err);
    }
    const db = new Level(dir);
    try {
        await db.open();
    }
    catch (err) {
        throw configError(dir, reasonOf(err), err);
    }
    return db;
}
/**
 * Opens the state database: `level` at `dir` (created with its parents when
 * missing), or `memory-level` when `dir` is undefined. Corrupt, unreadable or
 * locked by another process → `KEEP_CONFIG` `state database <dir>: <reason>`.
 */
export async function openStateDb(dir, options = {}) {
    let db;
    if (dir === undefined) {
        db = new MemoryLevel();
        await db.open();
    }
    else {
        db = await openDirectory(dir);
    }
    options.logger?.info({ stateDir: dir ?? 'memory' }, 'state database open');
    const sublevels = new Map();
    return {
        location: dir,
        sublevel(name) {
            let sub = sublevels.get(name);
            if (sub === undefined) {
                sub = db.sublevel(name);
                sublevels.set(name, sub);
            }
            return sub;
        },
        close: () => db.close(),
    };
}
//# sourceMappingURL=state-db.js.map