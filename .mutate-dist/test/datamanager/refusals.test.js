import { appendFile, rm } from 'node:fs/promises';
import t from 'tap';
import { md5hex } from '../../shared/hash.js';
import { EMPTY_LIST_DIGEST, HOUR, T0, collection, putBlock, rendezvous, startDmCluster, writeCollections, } from '../helpers/datamanager-cluster.js';
const COLL = (n) => `zzzzz-4zz18-${String(n).padStart(15, '0')}`;
/**
 * A cluster where an unrefused run would send both lists: an old garbage
 * block (trash) and a referenced block only on its last rendezvous server
 * (pulls), plus ten collections. The clock stands past the TTL.
 */
async function loaded(t) {
    const dm = await startDmCluster(t);
    const uuids = dm.config.keepstores.map((k) => k.uuid);
    await putBlock(dm.urls[0], 'garbage to be trashed\n');
    const data = 'a misplaced block\n';
    const misplaced = await putBlock(dm.urls[uuids.indexOf(rendezvous(dm, md5hex(data))[2])], data);
    const records = [collection(COLL(0), [misplaced])];
    for (let i = 1; i < 10; i++)
        records.push(collection(COLL(i), []));
    await writeCollections(dm.collectionsFile, records);
    dm.clock.now = T0 + 2 * HOUR;
    return dm;
}
/** Nothing but empty trash lists left the datamanager, and the keepstores hold exactly that. */
function assertNothingSent(t, dm, answering) {
    t.equal(dm.client.puts('/pull').length, 0, 'no PUT /pull at all');
    t.equal(dm.client.puts('/trash', true).length, 0, 'no PUT /trash carried a non-empty list');
    for (const i of answering) {
        const trash = dm.keepstores[i].worklists.trash.status();
        t.equal(trash.digest, EMPTY_LIST_DIGEST, `keepstore ${i} received an empty trash list (stale work cleared)`);
        t.same(trash.items, [], `keepstore ${i} has nothing queued to trash`);
        t.equal(trash.done, 0, `keepstore ${i} trashed nothing`);
        t.equal(dm.keepstores[i].worklists.pull.status().digest, null, `keepstore ${i} never received a pull list`);
    }
}
const mountOf = (dm, i) => dm.config.keepstores[i].volumes[0].uuid;
const rows = [
    {
        name: 'an index without its final empty line',
        code: 'index-incomplete',
        async arrange(dm) {
            dm.client.indexes.set(`${dm.urls[1]} /mounts/${mountOf(dm, 1)}/blocks`, (body) => body.slice(0, -1));
        },
    },
    {
        name: 'a malformed index line',
        code: 'index-incomplete',
        async arrange(dm) {
            dm.client.indexes.set(`${dm.urls[0]} /mounts/${mountOf(dm, 0)}/blocks`, (body) => `${body.slice(0, -1)}not-a-hash+3 1\n\n`);
        },
    },
    {
        name: 'an index that fails (a mount the keepstore does not serve)',
        code: 'index-incomplete',
        async arrange(dm) {
            dm.client.mounts.set(dm.urls[2], (mounts) => [...mounts, { ...mounts[0], uuid: 'zzzzz-nyw5e-999999999999999', device_id: 'elsewhere' }]);
        },
    },
    {
        name: 'a configured keepstore that does not answer',
        code: 'keepstore-unavailable',
        answering: [0, 1],
        async arrange(dm) {
            await dm.keepstores[2].close();
        },
    },
    {
        name: 'zero collections',
        code: 'no-collections',
        async arrange(dm) {
            await writeCollections(dm.collectionsFile, []);
        },
    },
    {
        name: 'a missing collections file',
        code: 'collections-unreadable',
        async arrange(dm) {
            await rm(dm.collectionsFile);
        },
    },
    {
        name: 'a malformed collection record',
        code: 'malformed-collection',
        async arrange(dm) {
            await appendFile(dm.collectionsFile, '{"uuid": "zzzzz-4zz18-bad", "manifest_text": 42}\n');
        },
    },
    {
        name: 'two mounts on one device',
        code: 'duplicate-device',
        async arrange(dm) {
            const device = `memory:${mountOf(dm, 0)}`;
            dm.client.mounts.set(dm.urls[1], (mounts) => mounts.map((m) => ({ ...m, device_id: device })));
        },
    },
    {
        name: 'one mount uuid on two servers',
        code: 'duplicate-mount',
        balanced: false,
        async arrange(dm) {
            dm.client.mounts.set(dm.urls[1], (mounts) => [...mounts, { ...mounts[0], uuid: mountOf(dm, 0), device_id: 'other' }]);
        },
    },
];
for (const row of rows) {
    t.test(`refusal: ${row.name} → exit 1, reason ${row.code}, no pull list, only empty trash lists`, async (t) => {
        const dm = await loaded(t);
        await row.arrange(dm);
        const result = await dm.run();
        t.equal(result.exitCode, 1);
        t.equal(result.report?.outcome, 'refused');
        t.ok(result.report?.refusals.some((r) => r.code === row.code), `refusals include ${row.code}`);
        if (row.balanced !== false) {
            t.ok((result.report?.trashes.decided ?? 0) > 0, 'balance wanted to trash');
        }
        assertNothingSent(t, dm, row.answering ?? [0, 1, 2]);
    });
}
t.test('refusal: collections down by more than 10 % since the last successful run; --force overrides only that', async (t) => {
    const dm = await loaded(t);
    dm.clock.now = T0 + 1000;
    const first = await dm.run();
    t.equal(first.exitCode, 0, 'a first run with 10 collections succeeds');
    const pullDigests = dm.keepstores.map((k) => k.worklists.pull.status().digest);
    const data = 'a misplaced block\n';
    const locator = `${md5hex(data)}+${data.length}`;
    await writeCollections(dm.collectionsFile, [collection(COLL(0), [locator]), ...Array.from({ length: 7 }, (_, i) => collection(COLL(i + 1), []))]);
    dm.clock.now = T0 + 2 * HOUR;
    dm.client.sent.length = 0;
    const second = await dm.run();
    t.equal(second.exitCode, 1, 'eight collections after ten is refused');
    t.same(second.report?.refusals.map((r) => r.code), ['collections-dropped']);
    t.equal(dm.client.puts('/pull').length, 0, 'no PUT /pull');
    t.equal(dm.client.puts('/trash', true).length, 0, 'no non-empty PUT /trash');
    for (const [i, k] of dm.keepstores.entries()) {
        t.equal(k.worklists.trash.status().digest, EMPTY_LIST_DIGEST, `keepstore ${i} got an empty trash list`);
        t.equal(k.worklists.pull.status().digest, pullDigests[i], `keepstore ${i} pull list untouched`);
    }
    const forced = await dm.run({ force: true });
    t.equal(forced.exitCode, 0, '--force accepts the drop');
    t.ok((forced.report?.trashes.sent ?? 0) > 0, 'and trashes');
    await writeCollections(dm.collectionsFile, []);
    const empty = await dm.run({ force: true });
    t.same(empty.report?.refusals.map((r) => r.code), ['no-collections'], '--force does not override zero collections');
});
t.test('refusal: referenced blocks down by more than 10 % is refused too', async (t) => {
    const dm = await loaded(t);
    const blocks = [];
    for (let i = 0; i < 10; i++)
        blocks.push(await putBlock(dm.urls[i % 3], `referenced ${i}\n`));
    await writeCollections(dm.collectionsFile, [collection(COLL(1), blocks), collection(COLL(2), [])]);
    t.equal((await dm.run()).exitCode, 0);
    await writeCollections(dm.collectionsFile, [collection(COLL(1), blocks.slice(0, 8)), collection(COLL(2), [])]);
    dm.client.sent.length = 0;
    const result = await dm.run();
    t.same(result.report?.refusals.map((r) => r.code), ['references-dropped']);
    t.equal(dm.client.puts('/trash', true).length, 0);
    t.equal(dm.client.puts('/pull').length, 0);
});
//# sourceMappingURL=refusals.test.js.map