import t from 'tap';
import { CATEGORIES } from '../../datamanager/balance.js';
import { addDecision, createTotals } from '../../datamanager/balance-report.js';
const HASH = 'acbd18db4cc2f85cedef654fccc4a4d8';
const locator = `${HASH}+1000`;
const replica = (n) => ({ server: `s${n}`, mount: `m${n}`, mtime: 1707249451308502672n + BigInt(n) });
function block(replicas, want) {
    return { hash: HASH, size: 1000, replicas: Array.from({ length: replicas }, (_, i) => replica(i)), want };
}
function decision(category, pulls, trashes) {
    return {
        category,
        pulls: Array.from({ length: pulls }, (_, i) => ({ server: `s${i}`, item: { locator, servers: ['http://s9.example'] } })),
        trashes: Array.from({ length: trashes }, (_, i) => ({ server: `s${i}`, item: { locator, block_mtime: replica(i).mtime } })),
    };
}
t.test('balance report: fresh totals count nothing in every category', async (t) => {
    const totals = createTotals();
    t.same(Object.keys(totals.categories), [...CATEGORIES]);
    for (const category of CATEGORIES)
        t.same(totals.categories[category], { blocks: 0, bytes: 0, replicas: 0 }, category);
    t.same([totals.pulls, totals.trashes], [{ items: 0, bytes: 0 }, { items: 0, bytes: 0 }]);
    t.same([totals.references, totals.dedupSavedBytes], [0, 0]);
});
t.test('balance report: blocks add up per category, work per item', async (t) => {
    const totals = createTotals();
    addDecision(totals, block(2, { replication: 2, classes: ['default'] }), decision('ok', 0, 0));
    addDecision(totals, block(3, { replication: 2, classes: ['default'] }), decision('over-replicated', 0, 1));
    addDecision(totals, block(1, { replication: 3, classes: ['default'] }), decision('under-replicated', 2, 0));
    addDecision(totals, block(2, { replication: 2, classes: ['default'] }), decision('ok', 0, 0));
    addDecision(totals, block(2, undefined), decision('garbage', 0, 2));
    t.same(totals.categories.ok, { blocks: 2, bytes: 2000, replicas: 4 });
    t.same(totals.categories['over-replicated'], { blocks: 1, bytes: 1000, replicas: 3 });
    t.same(totals.categories['under-replicated'], { blocks: 1, bytes: 1000, replicas: 1 });
    t.same(totals.categories.garbage, { blocks: 1, bytes: 1000, replicas: 2 });
    t.same(totals.categories.lost, { blocks: 0, bytes: 0, replicas: 0 });
    t.same(totals.pulls, { items: 2, bytes: 2000 });
    t.same(totals.trashes, { items: 3, bytes: 3000 });
});
t.test('balance report: dedup savings', async (t) => {
    const rows = [
        { name: 'a block referenced 4 times saves 3 copies of its bytes', want: { replication: 2, classes: [], references: 4 }, references: 4, saved: 3000 },
        { name: 'a block referenced once saves nothing', want: { replication: 2, classes: [], references: 1 }, references: 1, saved: 0 },
        { name: 'a referenced block without a count counts as one reference', want: { replication: 2, classes: [] }, references: 1, saved: 0 },
        { name: 'an unreferenced block counts no reference', want: undefined, references: 0, saved: 0 },
    ];
    for (const row of rows) {
        const totals = createTotals();
        addDecision(totals, block(1, row.want), decision(row.want === undefined ? 'young-unreferenced' : 'ok', 0, 0));
        t.same([totals.references, totals.dedupSavedBytes], [row.references, row.saved], row.name);
    }
});
//# sourceMappingURL=balance-report.test.js.map