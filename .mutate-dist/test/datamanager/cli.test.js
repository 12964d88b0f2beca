import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ADMIN_TOKEN, MANAGEMENT_TOKEN, SIGNING_KEY } from '../helpers/cluster.js';
import { collection, putBlock, rendezvous, startDmCluster, writeCollections } from '../helpers/datamanager-cluster.js';
import { createFileLock } from '../../datamanager/lock.js';
// Compiled to dist/test/datamanager/: the repository root is three levels up.
const BIN = fileURLToPath(new URL('../../../bin/datamanager', import.meta.url));
async function writeConfig(dm) {
    const file = path.join(dm.dir, 'cluster.json');
    const doc = {
        cluster: { id: 'zzzzz', systemRootToken: ADMIN_TOKEN, managementToken: MANAGEMENT_TOKEN, blobSigningKey: SIGNING_KEY },
        keepstores: dm.config.keepstores.map((ks) => ({ uuid: ks.uuid, url: ks.url, volumes: ks.volumes.map((v) => ({ uuid: v.uuid, driver: 'memory' })) })),
        datamanager: { collections: dm.collectionsFile, stateDir: dm.stateDir },
    };
    await writeFile(file, JSON.stringify(doc));
    return file;
}
function run(args) {
    return new Promise((resolve) => {
        execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
            resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
        });
    });
}
t.test('bin/datamanager: exit codes 2 (usage, config), 1 (refused), 0 (done), 3 (lock held)', async (t) => {
    const dm = await startDmCluster(t);
    const config = await writeConfig(dm);
    const usage = await run(['--config', config, '--bogus']);
    t.equal(usage.code, 2, 'unknown option');
    const missing = await run(['--config', path.join(dm.dir, 'missing.yml'), '--once']);
    t.equal(missing.code, 2, 'unreadable config');
    t.match(missing.stderr, /^config: cannot read .*missing\.yml/);
    t.notMatch(missing.stderr, /\n\s+at /, 'no stack trace for a person\'s mistake');
    const refused = await run(['--config', config, '--once']);
    t.equal(refused.code, 1, 'zero collections is refused');
    t.match(refused.stdout, /refusing to pull or trash: no collection was read/);
    const block = await putBlock(dm.urls[0], 'hello\n');
    await writeCollections(dm.collectionsFile, [collection('zzzzz-4zz18-000000000000001', [block])]);
    const done = await run(['--config', config, '--once']);
    t.equal(done.code, 0, 'a complete run');
    const report = JSON.parse(await readFile(path.join(dm.stateDir, 'report.json'), 'utf8'));
    const wanted = rendezvous(dm, block.slice(0, 32)).slice(0, 2);
    t.same([report.outcome, report.pulls.sent], ['committed', wanted.includes(dm.config.keepstores[0].uuid) ? 1 : 2]);
    t.ok(dm.keepstores.every((k) => k.worklists.pull.status().digest !== null), 'every keepstore received a pull list');
    const dry = await run(['--config', config, '--dry-run']);
    t.equal(dry.code, 0);
    t.match(dry.stdout, /dry run: zzzzz-bi6l4-/);
    const held = await createFileLock(dm.stateDir).tryAcquire();
    const locked = await run(['--config', config, '--once']);
    await held.release();
    t.equal(locked.code, 3, 'another instance holds the lock');
    t.match(locked.stderr, /^datamanager: another instance holds the lock .*datamanager\.lock\n$/);
});
//# sourceMappingURL=cli.test.js.map