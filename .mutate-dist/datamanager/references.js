const BATCH = 1024;
const WRITE_BATCH = 16_384;
const TAG_WIDTH = 4;
export function createReferenceSpill(db, options = {}) {
    const chunkSize = options.chunkSize ?? 200_000;
    const maxChunkChars = options.maxChunkChars ?? 32 << 20;
    let chunk = new Map();
    let chunkChars = 0;
    let chunks = 0;
    const classKeys = new Map();
    // The write of one batch (on LevelDB's thread) overlaps the building of the next (on ours).
    let writing;
    const flush = async () => {
        if (chunk.size === 0)
            return;
        const full = chunk;
        chunk = new Map();
        chunkChars = 0;
        const tag = (chunks++).toString(36).padStart(TAG_WIDTH, '0');
        const hashes = [...full.keys()].sort();
        // Several moderate writes: one 200 k-entry batch would be held whole in native memory.
        for (let start = 0; start < hashes.length; start += WRITE_BATCH) {
            const batch = db.batch();
            const end = Math.min(start + WRITE_BATCH, hashes.length);
            for (let i = start; i < end; i++) {
                const hash = hashes[i];
                const a = full.get(hash);
                batch.put(hash + tag, `${a.size}\t${a.replication}\t${a.refs}\t${a.classes}\t${a.uuids}`);
            }
            await writing;
            writing = batch.write();
            writing.catch(() => { }); // awaited by the next flush or by finish(); never an unhandled rejection meanwhile
        }
    };
    return {
        get chunks() {
            return chunks;
        },
        addCollection(collection) {
            let classes = classKeys.get(collection.classes);
            if (classes === undefined) {
                classes = JSON.stringify(collection.classes);
                if (classKeys.size < 1000)
                    classKeys.set(collection.classes, classes);
            }
            const { uuid, replication } = collection;
            const { hashes, sizes } = collection.refs;
            for (let i = 0; i < hashes.length; i++) {
                const hash = hashes[i];
                const a = chunk.get(hash);
                if (a === undefined) {
                    chunk.set(flatCopy(hash), { size: sizes[i], replication, refs: 1, classes, uuids: uuid, last: uuid });
                    chunkChars += uuid.length;
                    continue;
                }
                a.refs++;
                if (replication > a.replication)
                    a.replication = replication;
                if (classes !== a.classes)
                    a.classes = unionClasses(a.classes, classes);
                if (a.last !== uuid) {
                    a.uuids += ` ${uuid}`;
                    a.last = uuid;
                    chunkChars += uuid.length + 1;
                }
            }
            if (chunk.size >= chunkSize || chunkChars >= maxChunkChars)
                return flush();
            return undefined;
        },
        async finish() {
            await flush();
            await writing;
        },
        blocks: () => readBlocks(db),
    };
}
async function* readBlocks(db) {
    const parsedClasses = new Map();
    const classesOf = (json) => {
        let classes = parsedClasses.get(json);
        if (classes === undefined) {
            classes = JSON.parse(json);
            if (parsedClasses.size < 1000)
                parsedClasses.set(json, classes);
        }
        return classes;
    };
    const iterator = db.iterator();
    let current;
    let currentClasses = '';
    try {
        for (;;) {
            const entries = await iterator.nextv(BATCH);
            if (entries.length === 0)
                break;
            const out = [];
            for (const [key, value] of entries) {
                const hash = key.slice(0, 32);
                const t1 = value.indexOf('\t');
                const t2 = value.indexOf('\t', t1 + 1);
                const t3 = value.indexOf('\t', t2 + 1);
                const t4 = value.indexOf('\t', t3 + 1);
                const replication = Number(value.slice(t1 + 1, t2));
                const refs = Number(value.slice(t2 + 1, t3));
                const classes = value.slice(t3 + 1, t4);
                const uuids = value.slice(t4 + 1);
                if (current !== undefined && current.hash === hash) {
                    const want = current.want;
                    current.want = {
                        replication: Math.max(want.replication, replication),
                        classes: classes === currentClasses ? want.classes : classesOf((currentClasses = unionClasses(currentClasses, classes))),
                        references: (want.references ?? 0) + refs,
                    };
                    current.collections = joinUuids(current.collections, uuids);
                    continue;
                }
                if (current !== undefined)
                    out.push(current);
                currentClasses = classes;
                current = {
                    hash,
                    size: Number(value.slice(0, t1)),
                    want: { replication, classes: classesOf(classes), references: refs },
                    collections: uuids,
                };
            }
            if (out.length > 0)
                yield out;
        }
        if (current !== undefined)
            yield [current];
    }
    finally {
        await iterator.close();
    }
}
/**
 * A hash cut out of a manifest is a slice that keeps the whole manifest
 * alive and sorts ~4× slower than a flat string; a chunk key gets its own
 * copy (once per distinct hash per chunk, not per reference).
 */
function flatCopy(hash) {
    return Buffer.from(hash, 'latin1').toString('latin1');
}
/** A collection split across two chunks shows at the end of one and the start of the next. */
function joinUuids(a, b) {
    const space = b.indexOf(' ');
    const first = space === -1 ? b : b.slice(0, space);
    const lastSpace = a.lastIndexOf(' ');
    const last = lastSpace === -1 ? a : a.slice(lastSpace + 1);
    if (first !== last)
        return `${a} ${b}`;
    return space === -1 ? a : `${a} ${b.slice(space + 1)}`;
}
function unionClasses(a, b) {
    const set = new Set([...JSON.parse(a), ...JSON.parse(b)]);
    return JSON.stringify([...set].sort());
}
//# sourceMappingURL=references.js.map