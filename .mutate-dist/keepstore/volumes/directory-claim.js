import { randomBytes } from 'node:crypto';
import { link, open, readFile, readdir, unlink } from 'node:fs/promises';
import { KeepError } from '../../shared/errors.js';
import { errnoOf, isTempName } from './directory-fs.js';
import { blockDirs, dirEntries } from './directory-scan.js';
/** The volume id file in a root: `{"uuid": …, "created": ISO time}`. */
export const ID_FILE = '.keep-volume.json';
/**
 * Makes sure `root` belongs to volume `uuid`: an id file naming another uuid
 * is a KEEP_CONFIG error (two keepstores must never share a directory under
 * different names); a missing one is created, complete or not at all, unless
 * the volume is read-only.
 */
export async function claimRoot(fs, root, uuid, readOnly) {
    const idPath = `${root}/${ID_FILE}`;
    const owner = await readOwner(idPath, uuid);
    if (owner !== undefined)
        return checkOwner(owner, idPath, uuid);
    if (readOnly)
        return;
    const temp = `${root}/${ID_FILE}.tmp-${randomBytes(6).toString('hex')}`;
    const body = `${JSON.stringify({ uuid, created: new Date().toISOString() })}\n`;
    try {
        const handle = await fs.run('open', temp, () => open(temp, 'wx'), 'KEEP_IO');
        try {
            await fs.run('write', temp, () => handle.writeFile(body), 'KEEP_IO');
            await fs.run('fsync', temp, () => handle.sync(), 'KEEP_IO');
        }
        finally {
            await handle.close();
        }
        // link() fails if the id file appeared meanwhile: the first claim wins, whole.
        const linked = await link(temp, idPath).then(() => true, (err) => {
            if (errnoOf(err) === 'EEXIST')
                return false;
            throw fs.map(err, 'rename', idPath, 'KEEP_IO');
        });
        if (!linked)
            return checkOwner((await readOwner(idPath, uuid)) ?? '', idPath, uuid);
        await fs.syncDir(root);
    }
    finally {
        await fs.discard(temp);
    }
}
async function readOwner(idPath, uuid) {
    let text;
    try {
        text = await readFile(idPath, 'utf8');
    }
    catch (err) {
        if (errnoOf(err) === 'ENOENT')
            return undefined;
        throw new KeepError('KEEP_CONFIG', `volume ${uuid}: cannot read ${idPath} (${errnoOf(err) ?? String(err)})`, { cause: err });
    }
    try {
        const parsed = JSON.parse(text);
        if (typeof parsed.uuid === 'string')
            return parsed.uuid;
    }
    catch {
        // reported below
    }
    throw new KeepError('KEEP_CONFIG', `volume ${uuid}: ${idPath} is not a volume id file`);
}
function checkOwner(owner, idPath, uuid) {
    if (owner !== uuid) {
        throw new KeepError('KEEP_CONFIG', `volume ${uuid}: root is claimed by volume ${owner} (${idPath})`);
    }
}
/**
 * Deletes the temp files a crash left behind (in the root and in every block
 * directory). Only safe at start-up, before this volume writes anything.
 */
export async function removeStaleTemps(fs, root) {
    let removed = 0;
    const rootNames = await fs.run('readdir', root, () => readdir(root), 'KEEP_IO');
    for (const name of rootNames) {
        if (isTempName(name))
            removed += await remove(fs, `${root}/${name}`);
    }
    for (const sub of await blockDirs(fs, root)) {
        for (const name of await dirEntries(fs, `${root}/${sub}`)) {
            if (isTempName(name))
                removed += await remove(fs, `${root}/${sub}/${name}`);
        }
    }
    return removed;
}
async function remove(fs, path) {
    const done = await fs.optional('unlink', path, () => unlink(path).then(() => true));
    return done ? 1 : 0;
}
//# sourceMappingURL=directory-claim.js.map