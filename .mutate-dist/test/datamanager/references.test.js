import t from 'tap';
import fc from 'fast-check';
import { createReferenceSpill } from '../../datamanager/references.js';
import { createSpill } from '../../datamanager/spill.js';
const hashOf = (n) => n.toString(16).padStart(32, '0');
function coll(uuid, refs, replication = 2, classes = ['default']) {
    return { uuid, replication, classes, refs: { hashes: refs.map(hashOf), sizes: refs.map((r) => r + 1) } };
}
async function spilled(t, collections, chunkSize) {
    const spill = await createSpill(t.testdir({}));
    try {
        const refs = createReferenceSpill(await spill.open('refs'), { chunkSize });
        for (const c of collections)
            await refs.addCollection(c);
        await refs.finish();
        const out = [];
        for await (const batch of refs.blocks())
            out.push(...batch);
        return out;
    }
    finally {
        await spill.destroy();
    }
}
/** The same aggregation, done the obvious way in memory. */
function naive(collections) {
    const map = new Map();
    for (const c of collections) {
        c.refs.hashes.forEach((hash, i) => {
            let b = map.get(hash);
            if (b === undefined) {
                b = { hash, size: c.refs.sizes[i], want: { replication: 0, classes: [], references: 0 }, collections: '', uuidList: [] };
                map.set(hash, b);
            }
            b.want = {
                replication: Math.max(b.want.replication, c.replication),
                classes: [...new Set([...b.want.classes, ...c.classes])].sort(),
                references: (b.want.references ?? 0) + 1,
            };
            if (!b.uuidList.includes(c.uuid))
                b.uuidList.push(c.uuid);
        });
    }
    return [...map.values()]
        .sort((a, b) => (a.hash < b.hash ? -1 : 1))
        .map(({ uuidList, ...b }) => ({ ...b, collections: uuidList.join(' ') }));
}
t.test('references: chunks spilled to level come back merged per hash, in hash order', async (t) => {
    const collections = [
        coll('c1', [5, 3, 5, 9], 1),
        coll('c2', [3, 7], 3, ['archive']),
        coll('c3', [9, 1], 2, ['default', 'hot']),
    ];
    const expected = [
        { hash: hashOf(1), size: 2, want: { replication: 2, classes: ['default', 'hot'], references: 1 }, collections: 'c3' },
        { hash: hashOf(3), size: 4, want: { replication: 3, classes: ['archive', 'default'], references: 2 }, collections: 'c1 c2' },
        { hash: hashOf(5), size: 6, want: { replication: 1, classes: ['default'], references: 2 }, collections: 'c1' },
        { hash: hashOf(7), size: 8, want: { replication: 3, classes: ['archive'], references: 1 }, collections: 'c2' },
        { hash: hashOf(9), size: 10, want: { replication: 2, classes: ['default', 'hot'], references: 2 }, collections: 'c1 c3' },
    ];
    for (const chunkSize of [1, 2, 3, 1000]) {
        t.same(await spilled(t, collections, chunkSize), expected, `chunk size ${chunkSize}`);
    }
});
t.test('references: a collection split across chunks is listed once per block', async (t) => {
    const blocks = await spilled(t, [coll('c1', [1, 2, 1, 2, 1]), coll('c2', [1])], 1);
    t.same(blocks.map((b) => b.collections), ['c1 c2', 'c1']);
    t.same(blocks.map((b) => b.want.references), [4, 2]);
});
t.test('references: any input, any chunk size, same result as aggregating in memory', async (t) => {
    const arbCollection = fc.record({
        uuid: fc.constantFrom('a', 'b', 'c', 'd'),
        replication: fc.integer({ min: 0, max: 4 }),
        classes: fc.uniqueArray(fc.constantFrom('default', 'hot', 'cold'), { minLength: 1 }).map((c) => [...c].sort()),
        refs: fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 12 }),
    });
    await fc.assert(fc.asyncProperty(fc.array(arbCollection, { maxLength: 8 }), fc.integer({ min: 1, max: 6 }), async (raw, chunkSize) => {
        // One collection uuid per record, as in real exports.
        const collections = raw.map((c, i) => coll(`${c.uuid}${i}`, c.refs, c.replication, c.classes));
        const got = await spilled(t, collections, chunkSize);
        if (!t.same(got, naive(collections), `${collections.length} collections, chunk size ${chunkSize}`))
            throw new Error('differs');
    }), { numRuns: 40 });
});
//# sourceMappingURL=references.test.js.map