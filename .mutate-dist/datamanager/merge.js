/**
 * Merges the mounts' indexes and the reference set in hash order and hands
 * each block — its replicas and what the collections want of it — to
 * `visit`. Memory is one batch per source, whatever the number of blocks.
 * The inner loop is synchronous; it awaits only when a batch runs out, so
 * a 30 M line merge does not pay a promise per line (which is why this is
 * not `mergeSorted` over per-line iterables). Each step scans the heads of
 * all sources: O(sources) per block, fine for the few dozen mounts of a
 * cluster. Stops early, without error, when `signal` aborts.
 */
export async function mergeBlocks(mounts, references, visit, options = {}) {
    const cursors = mounts.map((m) => cursorOf(m.batches));
    const refs = cursorOf(references);
    const result = { blocks: 0, lines: 0 };
    try {
        for (;;) {
            for (const c of cursors)
                if (!c.done && c.pos >= c.batch.length)
                    await refill(c);
            if (!refs.done && refs.pos >= refs.batch.length)
                await refill(refs);
            if (options.signal?.aborted)
                break;
            let min;
            for (const c of cursors) {
                if (c.done)
                    continue;
                const hash = c.batch[c.pos].hash;
                if (min === undefined || hash < min)
                    min = hash;
            }
            let reference;
            if (!refs.done) {
                const head = refs.batch[refs.pos];
                if (min === undefined || head.hash <= min) {
                    min = head.hash;
                    reference = head;
                    refs.pos++;
                }
            }
            if (min === undefined)
                break;
            const replicas = [];
            let size = reference?.size ?? 0;
            for (let i = 0; i < cursors.length; i++) {
                const c = cursors[i];
                if (c.done)
                    continue;
                const entry = c.batch[c.pos];
                if (entry.hash !== min)
                    continue;
                c.pos++;
                if (replicas.length === 0)
                    size = entry.size;
                replicas.push({ server: mounts[i].server, mount: mounts[i].mount, mtime: entry.mtime });
            }
            result.blocks++;
            result.lines += replicas.length;
            const pending = visit({ hash: min, size, replicas, want: reference?.want }, reference);
            if (pending !== undefined)
                await pending;
        }
    }
    finally {
        await Promise.allSettled([...cursors, refs].map((c) => c.iterator.return?.()));
    }
    return result;
}
function cursorOf(source) {
    return { iterator: source[Symbol.asyncIterator](), batch: [], pos: 0, done: false };
}
async function refill(c) {
    for (;;) {
        const next = await c.iterator.next();
        if (next.done === true) {
            c.done = true;
            c.batch = [];
            c.pos = 0;
            return;
        }
        if (next.value.length > 0) {
            c.batch = next.value;
            c.pos = 0;
            return;
        }
    }
}
//# sourceMappingURL=merge.js.map