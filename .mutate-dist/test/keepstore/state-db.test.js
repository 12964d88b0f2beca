import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { isKeepError } from '../../shared/errors.js';
import { openStateDb } from '../../keepstore/state-db.js';
/** A real database holding one key, closed again. */
async function makeDb(dir) {
    const db = await openStateDb(dir);
    await db.sublevel('pull').put('k', 'v');
    await db.close();
}
/** The error opening `dir` fails with; undefined (and closed again) when it opens. */
async function openError(dir) {
    try {
        const db = await openStateDb(dir);
        await db.close();
        return undefined;
    }
    catch (err) {
        return err;
    }
}
t.test('state db: in memory when no directory is given', async (t) => {
    const db = await openStateDb(undefined);
    t.teardown(() => db.close());
    t.equal(db.location, undefined);
    await db.sublevel('pull').put('k', 'pull value');
    await db.sublevel('trash').put('k', 'trash value');
    t.equal(await db.sublevel('pull').get('k'), 'pull value', 'one name is one key space');
    t.equal(await db.sublevel('trash').get('k'), 'trash value', 'sublevels do not see each other');
});
t.test('state db: a directory is created with its parents and keeps data across reopen', async (t) => {
    const dir = join(t.testdir(), 'a', 'b', 'state');
    await makeDb(dir);
    const db = await openStateDb(dir);
    t.teardown(() => db.close());
    t.equal(db.location, dir);
    t.equal(await db.sublevel('pull').get('k'), 'v');
});
t.test('state db: what cannot be opened as it is is a KEEP_CONFIG error naming the path', async (t) => {
    const rows = [
        { name: 'garbage in CURRENT', spoil: (dir) => writeFileSync(join(dir, 'CURRENT'), 'garbage\n') },
        {
            name: 'garbage in the MANIFEST',
            spoil: (dir) => {
                const manifest = readdirSync(dir).find((n) => n.startsWith('MANIFEST-'));
                writeFileSync(join(dir, manifest ?? 'MANIFEST-000001'), 'garbage garbage garbage');
            },
        },
        { name: 'an empty CURRENT', spoil: (dir) => writeFileSync(join(dir, 'CURRENT'), '') },
    ];
    for (const row of rows) {
        const dir = join(t.testdir({ [row.name]: {} }), row.name);
        await makeDb(dir);
        row.spoil(dir);
        const before = readFileSync(join(dir, 'CURRENT'));
        const err = await openError(dir);
        t.ok(isKeepError(err, 'KEEP_CONFIG'), `${row.name} → KEEP_CONFIG`);
        t.ok(err instanceof Error && err.message.includes(dir), `${row.name}: the error names the directory`);
        t.same(readFileSync(join(dir, 'CURRENT')), before, `${row.name}: nothing is recreated`);
    }
});
t.test('state db: table files without CURRENT are refused, not replaced by an empty database', async (t) => {
    const dir = t.testdir();
    await makeDb(dir);
    rmSync(join(dir, 'CURRENT'));
    const err = await openError(dir);
    t.ok(isKeepError(err, 'KEEP_CONFIG'));
    t.notOk(readdirSync(dir).includes('CURRENT'), 'no new database was started there');
});
t.test('state db: a database held by another opener is a KEEP_CONFIG error', async (t) => {
    const dir = t.testdir();
    const db = await openStateDb(dir);
    t.teardown(() => db.close());
    const err = await openError(dir);
    t.ok(isKeepError(err, 'KEEP_CONFIG'));
    t.ok(err instanceof Error && err.message.includes(dir), 'the error names the directory');
});
t.test('state db: a path that is a file is a KEEP_CONFIG error', async (t) => {
    const dir = t.testdir({ state: 'not a directory' });
    const err = await openError(join(dir, 'state'));
    t.ok(isKeepError(err, 'KEEP_CONFIG'));
});
//# sourceMappingURL=state-db.test.js.map