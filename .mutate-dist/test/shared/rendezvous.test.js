import { readFileSync } from 'node:fs';
import t from 'tap';
import fc from 'fast-check';
import { mountOrder, rendezvousSuffix, serviceOrder } from '../../shared/rendezvous.js';
import { md5hex } from '../../shared/hash.js';
const vectors = JSON.parse(readFileSync(new URL('../../../test/fixtures/test-vectors.json', import.meta.url), 'utf8'));
t.test('rendezvousSuffix: last 15 characters of a 27-character uuid, else all', async (t) => {
    const rows = [
        ['zzzzz-bi6l4-000000000000000', '000000000000000'],
        ['zzzzz-nyw5e-12345678901234f', '12345678901234f'],
        ['zzzzz-bi6l4-00000000000000', 'zzzzz-bi6l4-00000000000000'],
        ['zzzzz-bi6l4-0000000000000000', 'zzzzz-bi6l4-0000000000000000'],
        ['keep0', 'keep0'],
        ['', ''],
    ];
    for (const [uuid, suffix] of rows)
        t.equal(rendezvousSuffix(uuid), suffix, `${JSON.stringify(uuid)} → ${suffix}`);
});
t.test('serviceOrder reproduces the service_order vectors', async (t) => {
    const { services, cases } = vectors.service_order;
    t.equal(cases.length, 4, 'the fixture holds the vectors');
    for (const { hash, order } of cases) {
        const want = [...order].map((digit) => services[parseInt(digit, 16)]);
        t.same(serviceOrder(hash, services, (s) => s), want, `${hash} in listed order`);
        t.same(serviceOrder(hash, [...services].reverse(), (s) => s), want, `${hash} in reversed order`);
    }
});
t.test('serviceOrder works on any item type and leaves its input alone', async (t) => {
    const servers = vectors.service_order.services.map((uuid, i) => ({ uuid, url: `http://keep${i}:25107` }));
    const before = servers.slice();
    const hash = 'acbd18db4cc2f85cedef654fccc4a4d8';
    const out = serviceOrder(hash, servers, (s) => s.uuid);
    t.not(out, servers, 'a new array');
    t.same(servers, before, 'the input keeps its order');
    t.same(out.map((s) => s.uuid), serviceOrder(hash, before.map((s) => s.uuid), (u) => u));
    t.same(serviceOrder(hash, [], (s) => s), [], 'no servers');
    t.same(serviceOrder(hash, ['only'], (s) => s), ['only'], 'one server');
});
t.test('serviceOrder: weights descend, whatever the input order', async (t) => {
    const uuids = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 12 });
    const hash = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 32, maxLength: 32 });
    t.doesNotThrow(() => fc.assert(fc.property(hash, uuids, fc.func(fc.integer()), (h, list, key) => {
        const shuffled = list.slice().sort((a, b) => key(a) - key(b));
        const a = serviceOrder(h, list, (s) => s);
        const b = serviceOrder(h, shuffled, (s) => s);
        if (a.join('\n') !== b.join('\n'))
            throw new Error('order depends on input order');
        const weights = a.map((u) => md5hex(h + rendezvousSuffix(u)));
        for (let i = 1; i < weights.length; i++)
            if (weights[i - 1] < weights[i])
                throw new Error('not descending');
    }), { numRuns: 200 }));
});
t.test('mountOrder reproduces the mount_order vectors', async (t) => {
    t.equal(vectors.mount_order.length, 7, 'the fixture holds the vectors');
    for (const { hash, mounts, order } of vectors.mount_order) {
        t.same(mountOrder(hash, mounts).map((m) => m.uuid), order, `${hash}, ${mounts.length} mounts`);
        t.same(mountOrder(hash, mounts.slice().reverse()).map((m) => m.uuid), order, `${hash}, reversed input`);
    }
});
t.test('mountOrder: priority first, then weight ascending; input untouched', async (t) => {
    const hash = 'acbd18db4cc2f85cedef654fccc4a4d8';
    const mounts = [
        { uuid: 'zzzzz-nyw5e-000000000000000', priority: 0 },
        { uuid: 'zzzzz-nyw5e-000000000000001', priority: 0 },
        { uuid: 'zzzzz-nyw5e-000000000000002', priority: 5 },
        { uuid: 'zzzzz-nyw5e-000000000000003', priority: -5 },
    ];
    const before = mounts.slice();
    const out = mountOrder(hash, mounts);
    t.same(mounts, before, 'the input keeps its order');
    t.equal(out[0].uuid, 'zzzzz-nyw5e-000000000000002', 'highest priority first');
    t.equal(out[3].uuid, 'zzzzz-nyw5e-000000000000003', 'negative priority last');
    const weight = (m) => md5hex(hash + rendezvousSuffix(m.uuid));
    t.ok(weight(out[1]) < weight(out[2]), 'equal priorities by ascending weight');
    t.same(mountOrder(hash, []), [], 'no mounts');
});
//# sourceMappingURL=rendezvous.test.js.map