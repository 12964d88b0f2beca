import t from 'tap';
import fc from 'fast-check';
import { mergeSorted } from '../../shared/merge-sorted.js';
async function* from(items) {
    for (const i of items)
        yield i;
}
const collect = async (it) => {
    const out = [];
    for await (const x of it)
        out.push(x);
    return out;
};
const byNumber = (a, b) => a - b;
t.test('merge sorted: rows', async (t) => {
    const rows = [
        { name: 'no sources → nothing', sources: [], want: [] },
        { name: 'empty sources → nothing', sources: [[], []], want: [] },
        { name: 'one source passes through', sources: [[1, 2, 3]], want: [1, 2, 3] },
        { name: 'interleaved sources merge', sources: [[1, 4, 7], [2, 5], [3, 6, 8, 9]], want: [1, 2, 3, 4, 5, 6, 7, 8, 9] },
        { name: 'duplicates are all kept', sources: [[1, 2], [2, 3], [2]], want: [1, 2, 2, 2, 3] },
    ];
    for (const row of rows) {
        t.same(await collect(mergeSorted(row.sources.map(from), byNumber)), row.want, row.name);
    }
});
t.test('merge sorted: equal items keep source order', async (t) => {
    const a = from([{ k: 1, s: 'a' }]);
    const b = from([{ k: 1, s: 'b' }]);
    const out = await collect(mergeSorted([a, b], (x, y) => x.k - y.k));
    t.same(out.map((x) => x.s), ['a', 'b']);
});
t.test('merge sorted: equals sorting the concatenation (property)', async (t) => {
    await fc.assert(fc.asyncProperty(fc.array(fc.array(fc.integer({ min: -50, max: 50 }), { maxLength: 20 }), { maxLength: 6 }), async (arrays) => {
        const sources = arrays.map((a) => [...a].sort(byNumber));
        const merged = await collect(mergeSorted(sources.map(from), byNumber));
        t.same(merged, sources.flat().sort(byNumber));
    }));
});
t.test('merge sorted: a consumer that stops early closes every source', async (t) => {
    let closed = 0;
    async function* src(items) {
        try {
            for (const i of items)
                yield i;
        }
        finally {
            closed++;
        }
    }
    for await (const x of mergeSorted([src([1, 3]), src([2, 4])], byNumber)) {
        if (x === 2)
            break;
    }
    t.equal(closed, 2);
});
//# sourceMappingURL=merge-sorted.test.js.map