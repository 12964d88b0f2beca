import t from 'tap';
import { mergeBlocks } from '../../datamanager/merge.js';
const h = (n) => n.toString(16).padStart(32, '0');
async function* batches(items, size) {
    for (let i = 0; i < items.length; i += size)
        yield items.slice(i, i + size);
    yield [];
}
function mount(server, name, hashes, size = 2) {
    const entries = hashes.map((n) => ({ hash: h(n), size: n, mtime: BigInt(n) * 10n }));
    return { server, mount: name, batches: batches(entries, size) };
}
function refs(hashes) {
    return batches(hashes.map((n) => ({ hash: h(n), size: n, want: { replication: 2, classes: ['default'] }, collections: `c${n}` })), 1);
}
t.test('merge: each hash once, in order, with every mount holding it and its reference', async (t) => {
    const seen = [];
    const result = await mergeBlocks([mount('s1', 'm1', [1, 3, 5, 8]), mount('s2', 'm2', [3, 4, 8], 1), mount('s2', 'm3', [])], refs([2, 3, 8, 9]), (block, reference) => {
        seen.push([block.hash, block.replicas.map((r) => `${r.server}/${r.mount}@${r.mtime}`), reference?.collections]);
    });
    t.same(seen, [
        [h(1), ['s1/m1@10'], undefined],
        [h(2), [], 'c2'],
        [h(3), ['s1/m1@30', 's2/m2@30'], 'c3'],
        [h(4), ['s2/m2@40'], undefined],
        [h(5), ['s1/m1@50'], undefined],
        [h(8), ['s1/m1@80', 's2/m2@80'], 'c8'],
        [h(9), [], 'c9'],
    ]);
    t.same(result, { blocks: 7, lines: 7 });
});
t.test('merge: the block carries the index size and the reference want', async (t) => {
    const blocks = [];
    await mergeBlocks([mount('s', 'm', [7])], refs([7]), (b) => void blocks.push(b));
    t.equal(blocks[0]?.size, 7);
    t.same(blocks[0]?.want, { replication: 2, classes: ['default'] });
});
t.test('merge: a visitor promise is awaited; an aborted signal stops the merge and closes the sources', async (t) => {
    const ac = new AbortController();
    let closed = false;
    async function* endless() {
        try {
            for (let n = 0;; n++)
                yield [{ hash: h(n), size: 1, mtime: 1n }];
        }
        finally {
            closed = true;
        }
    }
    let visited = 0;
    await mergeBlocks([{ server: 's', mount: 'm', batches: endless() }], refs([]), async () => {
        await new Promise((resolve) => setImmediate(resolve));
        if (++visited === 5)
            ac.abort();
    }, { signal: ac.signal });
    t.equal(visited, 5);
    t.ok(closed, 'the source was returned');
});
t.test('merge: no sources and no references visit nothing', async (t) => {
    t.same(await mergeBlocks([], refs([]), () => void t.fail('visited')), { blocks: 0, lines: 0 });
});
//# sourceMappingURL=merge.test.js.map