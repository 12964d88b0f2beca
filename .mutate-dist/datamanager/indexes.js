import { z } from 'zod';
import { KeepError } from '../shared/errors.js';
import { IndexParser } from './index-parser.js';
const mountsSchema = z.array(z.object({
    uuid: z.string().min(1),
    device_id: z.string().default(''),
    allow_write: z.boolean().default(false),
    allow_trash: z.boolean().default(false),
    replication: z.number().int().min(1).default(1),
    storage_classes: z.record(z.string(), z.boolean()).nullish(),
    priority: z.number().int().default(0),
}));
/** `GET /mounts`, validated. Throws `KEEP_UNAVAILABLE` (no answer) or `KEEP_BAD_REQUEST` (an answer we cannot use). */
export async function fetchMounts(client, server, signal) {
    const json = await client.getJson(server.url, '/mounts', signal ? { signal } : {});
    const parsed = mountsSchema.safeParse(json);
    if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new KeepError('KEEP_BAD_REQUEST', `GET /mounts: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
    }
    return parsed.data.map((m) => {
        const classes = Object.entries(m.storage_classes ?? {})
            .filter(([, on]) => on)
            .map(([name]) => name)
            .sort();
        return {
            uuid: m.uuid,
            priority: m.priority,
            replication: m.replication,
            allowWrite: m.allow_write,
            allowTrash: m.allow_trash,
            storageClasses: classes.length === 0 ? ['default'] : classes,
            deviceId: m.device_id,
        };
    });
}
function indexPath(mount, prefix) {
    return `/mounts/${encodeURIComponent(mount)}/blocks${prefix === '' ? '' : `/${prefix}`}`;
}
function newStatus(server, mount) {
    return { server: server.uuid, mount, state: 'pending', lines: 0, error: undefined };
}
/**
 * Streams `GET /mounts/<uuid>/blocks` as parsed batches, checking it as it
 * goes (see {@link IndexParser}). Never throws: a failure ends the stream
 * and is recorded in `status`, so the merge carries on with the others and
 * the sanity phase refuses afterwards.
 */
export function openIndex(client, server, mount, options = {}) {
    const status = newStatus(server, mount);
    const prefix = options.prefix ?? '';
    async function* batches() {
        const parser = new IndexParser({ prefix });
        let body;
        try {
            body = await client.getStream(server.url, indexPath(mount, prefix), options.signal ? { signal: options.signal } : {});
            for await (const chunk of body) {
                const entries = parser.push(chunk);
                if (entries.length > 0)
                    yield entries;
                if (parser.error !== undefined)
                    throw parser.error;
            }
            settle(status, parser);
        }
        catch (err) {
            status.state = parser.unsorted ? 'unsorted' : 'failed';
            status.error = err.message;
            if (parser.unsorted)
                options.onUnsorted?.();
        }
        finally {
            status.lines = parser.lines;
            body?.destroy();
        }
    }
    return { server: server.uuid, mount, status, batches: batches() };
}
function settle(status, parser) {
    if (parser.end()) {
        status.state = 'complete';
    }
    else {
        status.state = 'incomplete';
        status.error = 'index ended without its final empty line';
    }
}
/**
 * Fetches an index that arrived unsorted into `db` (level sorts it), then
 * serves it like {@link openIndex} does, in hash order. Resolves once the
 * index is on disk; its status is final by then.
 */
export async function spillIndex(client, server, mount, db, options = {}) {
    const status = newStatus(server, mount);
    const prefix = options.prefix ?? '';
    const parser = new IndexParser({ prefix, allowUnsorted: true });
    let body;
    try {
        body = await client.getStream(server.url, indexPath(mount, prefix), options.signal ? { signal: options.signal } : {});
        for await (const chunk of body) {
            const entries = parser.push(chunk);
            if (parser.error !== undefined)
                throw parser.error;
            if (entries.length === 0)
                continue;
            const batch = db.batch();
            for (const e of entries)
                batch.put(e.hash, `${e.size} ${e.mtime}`);
            await batch.write();
        }
        settle(status, parser);
    }
    catch (err) {
        status.state = 'failed';
        status.error = err.message;
    }
    finally {
        status.lines = parser.lines;
        body?.destroy();
    }
    return { server: server.uuid, mount, status, batches: readSpilledIndex(db) };
}
async function* readSpilledIndex(db) {
    const iterator = db.iterator();
    try {
        for (;;) {
            const entries = await iterator.nextv(1024);
            if (entries.length === 0)
                return;
            yield entries.map(([hash, value]) => {
                const space = value.indexOf(' ');
                return { hash, size: Number(value.slice(0, space)), mtime: BigInt(value.slice(space + 1)) };
            });
        }
    }
    finally {
        await iterator.close();
    }
}
//# sourceMappingURL=indexes.js.map