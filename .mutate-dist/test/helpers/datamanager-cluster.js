import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { md5hex } from '../../shared/hash.js';
import { KeepstoreClient } from '../../shared/keepstore-client.js';
import { silentLogger } from '../../shared/logger.js';
import { rendezvousSuffix } from '../../shared/rendezvous.js';
import { listDigest } from '../../shared/worklist-items.js';
import { createFileLock } from '../../datamanager/lock.js';
import { runDatamanager } from '../../datamanager/run.js';
import { ADMIN_TOKEN, call, startCluster } from './cluster.js';
/** A fixed start time (ms) for clocks the tests move by hand. */
export const T0 = 1_700_000_000_000;
export const HOUR = 3_600_000;
/**
 * `startCluster` with a datamanager section (collections in
 * `<dir>/collections.jsonl`, state in `<dir>/dm`), TTL 1 h and a clock that
 * both the keepstores and the datamanager read.
 */
export async function startDmCluster(t, options = {}) {
    const clock = { now: T0 };
    const cluster = await startCluster(t, {
        keepstores: 3,
        ...options,
        cluster: { blobSigningTTL: '1h', blobTrashLifetime: '0', ...options.cluster },
        datamanager: { collections: 'collections.jsonl', stateDir: 'dm', ...options.datamanager },
        now: () => clock.now,
    });
    const collectionsFile = path.join(cluster.dir, 'collections.jsonl');
    await writeFile(collectionsFile, '');
    const inner = new KeepstoreClient({ token: ADMIN_TOKEN });
    t.teardown(() => inner.close());
    const client = new RecordingClient(inner);
    const stateDir = path.join(cluster.dir, 'dm');
    const lock = createFileLock(stateDir);
    const logger = silentLogger();
    return {
        ...cluster,
        clock,
        collectionsFile,
        stateDir,
        client,
        run: (overrides = {}) => runDatamanager({
            config: cluster.config,
            client,
            lock,
            logger,
            now: () => clock.now,
            commit: { attempts: 2, sleep: async () => { } },
            out: { write: () => true },
            ...overrides,
        }),
    };
}
/**
 * A `DatamanagerClient` over a real one that records every PUT and can be
 * told to misbehave: rewrite a server's `/mounts`, cut an index short, fail.
 */
export class RecordingClient {
    inner;
    sent = [];
    /** Rewrites the parsed `/mounts` answer of a server (by url). */
    mounts = new Map();
    /** Rewrites the index body of `url path` (the whole text). */
    indexes = new Map();
    /** `url` → error for every request to it. */
    down = new Set();
    constructor(inner) {
        this.inner = inner;
    }
    async getJson(server, p, options) {
        this.check(server);
        const json = await this.inner.getJson(server, p, options);
        const rewrite = p === '/mounts' ? this.mounts.get(server) : undefined;
        return (rewrite === undefined ? json : rewrite(json));
    }
    async getStream(server, p, options) {
        this.check(server);
        const body = await this.inner.getStream(server, p, options);
        const rewrite = this.indexes.get(`${server} ${p}`);
        if (rewrite === undefined)
            return body;
        let text = '';
        for await (const chunk of body)
            text += String(chunk);
        return Readable.from([Buffer.from(rewrite(text))]);
    }
    async putJson(server, p, json, options) {
        this.check(server);
        const body = typeof json === 'string' ? json : [...json].join('');
        this.sent.push({ url: server, path: p, body });
        await this.inner.putJson(server, p, json === body ? body : [body], options);
    }
    /** PUTs to `path`, optionally only the non-empty ones. */
    puts(p, nonEmpty = false) {
        return this.sent.filter((s) => s.path === p && (!nonEmpty || s.body !== '[]'));
    }
    check(server) {
        if (this.down.has(server))
            throw Object.assign(new Error(`${server}: ECONNREFUSED`), { code: 'ECONNREFUSED' });
    }
}
/** Stores `data` on keepstore `url` (any mount it picks); returns the block's `hash+size`. */
export async function putBlock(url, data) {
    const hash = md5hex(data);
    const res = await call(url, 'PUT', `/${hash}`, { body: data });
    if (res.status !== 200)
        throw new Error(`PUT ${hash} to ${url}: ${res.status} ${res.text}`);
    return `${hash}+${Buffer.byteLength(data)}`;
}
/** hash → uuids of the keepstores whose index lists it. */
export async function whereIs(cluster) {
    const out = new Map();
    for (const ks of cluster.keepstores) {
        const res = await call(ks.url, 'GET', '/index', { token: ADMIN_TOKEN });
        for (const line of res.text.split('\n')) {
            if (line === '')
                continue;
            const hash = line.slice(0, 32);
            out.set(hash, [...(out.get(hash) ?? []), ks.config.uuid]);
        }
    }
    return out;
}
/** Keepstore uuids in rendezvous order for `hash` (PROTOCOL §6). */
export function rendezvous(cluster, hash) {
    return cluster.config.keepstores
        .map((ks) => ({ uuid: ks.uuid, weight: md5hex(hash + rendezvousSuffix(ks.uuid)) }))
        .sort((a, b) => (a.weight < b.weight ? 1 : a.weight > b.weight ? -1 : 0))
        .map((k) => k.uuid);
}
/** A collection record line for a `.jsonl` file. */
export function collection(uuid, locators, extra = {}) {
    const manifest = locators.length === 0 ? '' : `. ${locators.join(' ')} 0:1:file.txt\n`;
    return JSON.stringify({ uuid, manifest_text: manifest, replication_desired: null, ...extra });
}
export async function writeCollections(file, lines) {
    await writeFile(file, lines.map((l) => `${l}\n`).join(''));
}
/** Waits until every keepstore's pull and trash worklists are idle. */
export async function settle(cluster) {
    await Promise.all(cluster.keepstores.flatMap((k) => [k.worklists.pull.idle(), k.worklists.trash.idle()]));
}
export const EMPTY_LIST_DIGEST = listDigest('[]');
//# sourceMappingURL=datamanager-cluster.js.map