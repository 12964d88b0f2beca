import t from 'tap';
import { silentLogger } from '../../shared/logger.js';
import { pullItemCodec, serializePullList, serializeTrashList, trashItemCodec, } from '../../shared/worklist-items.js';
import { ChangeSets } from '../../datamanager/change-sets.js';
import { clearTrashLists, commitChanges, listBody } from '../../datamanager/commit.js';
const H = 'acbd18db4cc2f85cedef654fccc4a4d8';
const servers = [
    { uuid: 's0', url: 'http://k0' },
    { uuid: 's1', url: 'http://k1' },
];
const pull = (n) => ({ locator: `${H.slice(0, 28)}${String(n).padStart(4, '0')}+3`, servers: ['http://k1'], mount_uuid: 'm0' });
const trash = (n) => ({ locator: `${H.slice(0, 28)}${String(n).padStart(4, '0')}+3`, block_mtime: 1707249451308502672n + BigInt(n) });
/** Records PUTs; `fail(url, path)` says how many times that request fails first. */
function fakeClient(fail = () => 0) {
    const sent = [];
    const failures = new Map();
    return {
        sent,
        async putJson(url, path, body) {
            const key = `${url} ${path}`;
            const failed = failures.get(key) ?? 0;
            if (failed < fail(url, path)) {
                failures.set(key, failed + 1);
                throw new Error('503 try later');
            }
            sent.push([url, path, typeof body === 'string' ? body : [...body].join('')]);
        },
    };
}
t.test('commit: a streamed list body is byte for byte the serialized list', async (t) => {
    for (const n of [0, 1, 511, 512, 513, 1500]) {
        const pulls = Array.from({ length: n }, (_, i) => pull(i));
        const trashes = Array.from({ length: n }, (_, i) => trash(i));
        t.equal([...listBody(pulls, pullItemCodec)].join(''), serializePullList(pulls), `${n} pulls`);
        t.equal([...listBody(trashes, trashItemCodec)].join(''), serializeTrashList(trashes), `${n} trashes`);
    }
});
t.test('change sets: items past pullLimit / trashLimit are counted as deferred', async (t) => {
    const sets = new ChangeSets(servers, { pullLimit: 2, trashLimit: 1 });
    const decision = {
        category: 'misplaced',
        pulls: [{ server: 's0', item: pull(1) }, { server: 's0', item: pull(2) }, { server: 's0', item: pull(3) }],
        trashes: [{ server: 's1', item: trash(1) }, { server: 's1', item: trash(2) }],
    };
    sets.add(decision, 100);
    const [s0, s1] = sets.list();
    t.same([s0.pulls.length, s0.deferredPulls, s0.pullBytes], [2, 1, 200]);
    t.same([s1.trashes.length, s1.deferredTrashes, s1.trashBytes], [1, 1, 100]);
    t.same([s0.trashes.length, s1.pulls.length], [0, 0]);
});
function sets() {
    const s = new ChangeSets(servers, { pullLimit: 10, trashLimit: 10 });
    s.add({ category: 'misplaced', pulls: [{ server: 's0', item: pull(1) }], trashes: [{ server: 's1', item: trash(1) }] }, 3);
    return s.list();
}
t.test('commit: every server gets its pull list then its trash list, empty ones included', async (t) => {
    const client = fakeClient();
    const results = await commitChanges(sets(), { client, logger: silentLogger(), clearFirst: false });
    t.same(results.map((r) => [r.server, r.pull, r.trash]), [['s0', 'sent', 'sent'], ['s1', 'sent', 'sent']]);
    t.same(client.sent.filter(([url]) => url === 'http://k0').map(([, p, body]) => [p, body]), [['/pull', serializePullList([pull(1)])], ['/trash', '[]']]);
    t.same(client.sent.filter(([url]) => url === 'http://k1').map(([, p, body]) => [p, body]), [['/pull', '[]'], ['/trash', serializeTrashList([trash(1)])]]);
});
t.test('commit: after a layout change every trash list is cleared first, and nothing else goes out if one cannot be', async (t) => {
    const client = fakeClient();
    await commitChanges(sets(), { client, logger: silentLogger(), clearFirst: true });
    t.same(client.sent.slice(0, 2).map(([, p, body]) => [p, body]), [['/trash', '[]'], ['/trash', '[]']]);
    t.equal(client.sent.length, 6);
    const broken = fakeClient((url, p) => (url === 'http://k1' && p === '/trash' ? 99 : 0));
    const results = await commitChanges(sets(), { client: broken, logger: silentLogger(), clearFirst: true, attempts: 2, sleep: async () => { } });
    t.same(broken.sent.map(([url, p, body]) => [url, p, body]), [['http://k0', '/trash', '[]']], 'only the clearing reached k0');
    t.same(results.map((r) => [r.pull, r.trash]), [['not-sent', 'sent'], ['not-sent', 'failed']]);
    t.match(results[1].error, /PUT \/trash: 503/);
});
t.test('commit: a failing request is retried with growing delays', async (t) => {
    const delays = [];
    const client = fakeClient((url, p) => (url === 'http://k0' && p === '/pull' ? 2 : 0));
    const results = await commitChanges(sets(), {
        client,
        logger: silentLogger(),
        clearFirst: false,
        attempts: 3,
        retryDelayMs: 100,
        sleep: async (ms) => void delays.push(ms),
    });
    t.same(delays, [100, 200]);
    t.equal(results[0].pull, 'sent');
    t.equal(results[0].error, undefined);
});
t.test('commit: a refused run sends each answering server an empty trash list and nothing else', async (t) => {
    const client = fakeClient();
    const results = await clearTrashLists(servers, { client, logger: silentLogger() });
    t.same(client.sent, [['http://k0', '/trash', '[]'], ['http://k1', '/trash', '[]']]);
    t.same(results.map((r) => [r.pull, r.trash]), [['not-sent', 'sent'], ['not-sent', 'sent']]);
});
//# sourceMappingURL=commit.test.js.map