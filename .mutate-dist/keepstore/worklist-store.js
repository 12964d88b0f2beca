import { KeepError } from '../shared/errors.js';
/** Sorts after every item key (they start with a digit). */
export const META_KEY = 'meta';
const WIDTH = 12;
const pad = (n) => n.toString().padStart(WIDTH, '0');
/** `<generation>:<seq>`, both zero-padded, so a generation is one ordered key range. */
export function itemKey(generation, seq) {
    return `${pad(generation)}:${pad(seq)}`;
}
const generationOf = (key) => Number(key.slice(0, WIDTH));
const generationStart = (generation) => `${pad(generation)}:`;
const generationEnd = (generation) => `${pad(generation)};`;
/**
 * A {@link WorklistStore} in a sublevel of the state database. Keys are
 * `<generation>:<seq>` plus {@link META_KEY}, which names the current
 * generation; a replace writes the new generation and the meta switch in one
 * batch and removes the old generation after.
 */
export function createWorklistStore(db, codec, options = {}) {
    const name = options.name ?? db.prefix;
    let meta = { generation: 0, digest: null, received_at: null, done: 0, failed: 0, skipped: 0 };
    let tail = Promise.resolve();
    function serial(write) {
        const result = tail.then(write);
        tail = result.catch(() => undefined);
        return result;
    }
    function corrupt(what, err) {
        const reason = err instanceof Error ? err.message : String(err);
        return new KeepError('KEEP_CONFIG', `state database: worklist ${name}: ${what}: ${reason}`, { cause: err });
    }
    async function readMeta() {
        const text = await db.get(META_KEY);
        if (text === undefined)
            return meta;
        try {
            const record = JSON.parse(text);
            if (!Number.isSafeInteger(record.generation))
                throw new Error('no generation');
            return record;
        }
        catch (err) {
            throw corrupt(`meta ${JSON.stringify(text)}`, err);
        }
    }
    async function clearOthers(generation) {
        await db.clear({ lt: generationStart(generation) });
        await db.clear({ gt: generationEnd(generation), lt: META_KEY });
    }
    return {
        load: () => serial(async () => {
            meta = await readMeta();
            const items = [];
            const range = { gte: generationStart(meta.generation), lt: generationEnd(meta.generation) };
            for await (const [key, value] of db.iterator(range)) {
                try {
                    items.push({ key, item: codec.decode(value) });
                }
                catch (err) {
                    throw corrupt(`item ${key}`, err);
                }
            }
            await clearOthers(meta.generation);
            const { digest, received_at: receivedAt, done, failed, skipped } = meta;
            return { meta: { digest, receivedAt, counters: { done, failed, skipped } }, items };
        }),
        replace: (items, { digest, receivedAt }) => serial(async () => {
            const generation = meta.generation + 1;
            const next = { generation, digest, received_at: receivedAt.toISOString(), done: 0, failed: 0, skipped: 0 };
            const stored = items.map((item, seq) => ({ key: itemKey(generation, seq), item }));
            const ops = stored.map(({ key, item }) => ({
                type: 'put',
                key,
                value: codec.encode(item),
            }));
            ops.push({ type: 'put', key: META_KEY, value: JSON.stringify(next) });
            await db.batch(ops);
            meta = next;
            // Queued behind this write, not awaited: the new list is durable already.
            serial(() => db.clear({ lt: generationStart(generation) })).catch((err) => {
                options.logger?.error({ err, worklist: name }, 'removing the previous list failed; it goes on the next open');
            });
            return stored;
        }),
        finish: (key, counters) => serial(async () => {
            if (generationOf(key) !== meta.generation)
                return db.del(key);
            meta = { ...meta, ...counters };
            return db.batch([
                { type: 'del', key },
                { type: 'put', key: META_KEY, value: JSON.stringify(meta) },
            ]);
        }),
        remove: (keys) => serial(() => db.batch(keys.map((key) => ({ type: 'del', key })))),
        flush: () => serial(async () => undefined),
    };
}
//# sourceMappingURL=worklist-store.js.map