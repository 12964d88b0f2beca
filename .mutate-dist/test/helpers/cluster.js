import path from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { parseConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/logger.js';
import { startKeepstore } from '../../keepstore/server.js';
export const ADMIN_TOKEN = 'admin-token-0123456789abcdefghijklmnopqrstuvwxyz';
export const MANAGEMENT_TOKEN = 'management-token-0123456789abcdefghijklmnop';
export const SIGNING_KEY = 'signing-key-0123456789abcdefghijklmnopqrstuvwxyz';
import { freePorts } from '../../shared/free-ports.js';
export { freePorts };
export function captureLogger(sink) {
    const destination = new Writable({
        write(chunk, _enc, cb) {
            for (const line of chunk.toString().split('\n'))
                if (line)
                    sink.push(JSON.parse(line));
            cb();
        },
    });
    return createLogger({ level: 'debug', destination });
}
export function clusterConfig(dir, ports, options = {}) {
    const volumes = options.volumes ?? [{ driver: 'memory' }];
    const doc = {
        cluster: {
            id: 'zzzzz',
            systemRootToken: ADMIN_TOKEN,
            managementToken: MANAGEMENT_TOKEN,
            blobSigningKey: SIGNING_KEY,
            ...options.cluster,
        },
        keepstores: ports.map((port, i) => ({
            uuid: `zzzzz-bi6l4-${String(i).padStart(15, '0')}`,
            url: `http://127.0.0.1:${port}`,
            stateDir: path.join(dir, `state${i}`),
            ...options.keepstore,
            volumes: volumes.map((v, j) => ({
                uuid: `zzzzz-nyw5e-${String(i).padStart(7, '0')}${String(j).padStart(8, '0')}`,
                driver: v.driver,
                ...(v.driver === 'directory' ? { root: path.join(dir, `ks${i}-vol${j}`) } : {}),
                ...(v.readOnly ? { readOnly: true } : {}),
                ...(v.storageClasses ? { storageClasses: v.storageClasses } : {}),
                ...(v.replication ? { replication: v.replication } : {}),
                ...(v.priority ? { priority: v.priority } : {}),
            })),
        })),
        ...(options.datamanager ? { datamanager: options.datamanager } : {}),
    };
    return parseConfig(JSON.stringify(doc), { baseDir: dir });
}
/** Starts N in-process keepstores on loopback ports; stops them at teardown. */
export async function startCluster(t, options = {}) {
    const dir = t.testdir({});
    const { mkdir } = await import('node:fs/promises');
    const n = options.keepstores ?? 1;
    const ports = await freePorts(n);
    const config = clusterConfig(dir, ports, options);
    for (const ks of config.keepstores)
        for (const v of ks.volumes)
            if (v.root)
                await mkdir(v.root, { recursive: true });
    const logger = options.logs ? captureLogger(options.logs) : createLogger({ level: 'silent' });
    const start = (i) => startKeepstore(config, { uuid: config.keepstores[i].uuid, logger, ...(options.now ? { now: options.now } : {}), ...(options.pullHeadersTimeoutMs !== undefined ? { pullHeadersTimeoutMs: options.pullHeadersTimeoutMs } : {}), shutdownGraceMs: 1000 });
    const keepstores = [];
    for (let i = 0; i < n; i++)
        keepstores.push(await start(i));
    t.teardown(() => Promise.all(keepstores.map((k) => k.close())));
    return {
        config,
        keepstores,
        urls: keepstores.map((k) => k.url),
        dir,
        async restart(i) {
            await keepstores[i].close();
            keepstores[i] = await start(i);
            return keepstores[i];
        },
    };
}
/** One HTTP request through real routing; the body is read fully. */
export async function call(url, method, pathname, options = {}) {
    const headers = { ...options.headers };
    if (options.token)
        headers.authorization = `Bearer ${options.token}`;
    const res = await request(new URL(pathname, url), {
        method: method,
        headers,
        ...(options.body !== undefined ? { body: options.body } : {}),
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    const flat = {};
    for (const [k, v] of Object.entries(res.headers))
        flat[k] = Array.isArray(v) ? v.join(', ') : String(v);
    return { status: res.statusCode, headers: flat, body, text: body.toString('utf8') };
}
//# sourceMappingURL=cluster.js.map