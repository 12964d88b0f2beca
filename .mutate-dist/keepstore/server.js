import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { KeepError } from '../shared/errors.js';
import { selectKeepstore, keepstoreByOrigin } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { KeepstoreClient } from '../shared/keepstore-client.js';
import { createVolume } from './volumes/create-volume.js';
import { MAX_BLOCK_SIZE } from './volumes/volume.js';
import { Mount } from './mount.js';
import { Keepstore } from './keepstore.js';
import { KeepstoreMetrics } from './metrics.js';
import { openStateDb } from './state-db.js';
import { createWorklists } from './worklists.js';
import { startTrashEmptier } from './trash-emptier.js';
import { createApp } from './http/app.js';
import { handleClientError } from './http/client-error.js';
export const VERSION = '0.1.0';
/** Opens volumes and state, resumes worklists, and listens. Any start-up fault is a KeepError (KEEP_CONFIG for operator mistakes). */
export async function startKeepstore(config, options = {}) {
    const ksConfig = selectKeepstore(config, options.uuid);
    const logger = (options.logger ?? createLogger()).child({ keepstore: ksConfig.uuid });
    if (!config.cluster.systemRootToken)
        throw new KeepError('KEEP_CONFIG', 'config: cluster.systemRootToken: required');
    const now = options.now ?? Date.now;
    const nowNs = () => BigInt(now()) * 1000000n;
    const mounts = [];
    for (const v of ksConfig.volumes) {
        const volume = createVolume(v, options.now ? { now: nowNs } : {});
        await volume.open();
        mounts.push(new Mount({ volume, replication: v.replication, storageClasses: v.storageClasses, priority: v.priority, readOnly: v.readOnly, minFreeSpace: ksConfig.minFreeSpace, now }));
    }
    const keepstore = new Keepstore({ uuid: ksConfig.uuid, mounts, cluster: config.cluster, logger, now });
    let worklists;
    const metrics = new KeepstoreMetrics({
        mounts: () => keepstore.mounts,
        worklists: () => (worklists ? { pull: worklists.pull.status(), trash: worklists.trash.status() } : {}),
    });
    const db = await openStateDb(ksConfig.stateDir);
    const client = new KeepstoreClient(options.pullHeadersTimeoutMs !== undefined ? { headersTimeoutMs: options.pullHeadersTimeoutMs } : {});
    worklists = await createWorklists({
        keepstore,
        db,
        client,
        metrics,
        logger,
        pullConcurrency: ksConfig.pullConcurrency,
        trashConcurrency: ksConfig.trashConcurrency,
        isKnownServer: (url) => keepstoreByOrigin(config, url) !== undefined,
    });
    const emptier = startTrashEmptier(keepstore, config.cluster.blobTrashCheckIntervalMs, logger, (n) => metrics.trashEmptied.inc(n));
    const deps = { keepstore, worklists, metrics, logger, version: VERSION };
    const app = createApp(deps, { maxConcurrentRequests: ksConfig.maxConcurrentRequests });
    const handler = app.callback();
    // Node checks header/request timeouts every connectionsCheckingInterval (30 s by default).
    const serverOptions = { connectionsCheckingInterval: Math.max(100, Math.min(1000, ksConfig.headerTimeoutMs / 2)) };
    const server = ksConfig.tls
        ? https.createServer({ ...serverOptions, cert: await readFile(ksConfig.tls.certificate), key: await readFile(ksConfig.tls.key) }, handler)
        : http.createServer(serverOptions, handler);
    server.headersTimeout = ksConfig.headerTimeoutMs;
    server.requestTimeout = ksConfig.requestTimeoutMs;
    server.keepAliveTimeout = 65_000;
    // `Expect: 100-continue`: refuse an oversized block before the client sends it.
    server.on('checkContinue', (req, res) => {
        if (Number(req.headers['content-length'] ?? 0) > MAX_BLOCK_SIZE) {
            res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close' });
            res.end('block exceeds 64 MiB\n');
            return;
        }
        res.writeContinue();
        server.emit('request', req, res);
    });
    server.on('clientError', (err, socket) => handleClientError(deps, err, socket));
    const port = options.port ?? ksConfig.listen.port;
    await new Promise((resolve, reject) => {
        server.once('error', (err) => reject(new KeepError('KEEP_CONFIG', `keepstore ${ksConfig.uuid}: cannot listen on ${ksConfig.listen.host}:${port}: ${err.code ?? err.message}`)));
        server.listen(port, ksConfig.listen.host, () => resolve());
    });
    const actual = server.address().port;
    const url = `${ksConfig.tls ? 'https' : 'http'}://${ksConfig.listen.host.includes(':') ? `[${ksConfig.listen.host}]` : ksConfig.listen.host}:${actual}`;
    logger.info({ url, volumes: mounts.map((m) => m.uuid) }, 'keepstore listening');
    let closing;
    const close = () => (closing ??= (async () => {
        const grace = options.shutdownGraceMs ?? 10_000;
        const stopped = new Promise((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), grace);
        await stopped;
        clearTimeout(timer);
        await emptier.stop();
        await worklists.close();
        await client.close();
        await db.close();
        await keepstore.close();
        logger.info('keepstore stopped');
    })());
    return { url, port: actual, config: ksConfig, keepstore, worklists, emptier, metrics, close };
}
//# sourceMappingURL=server.js.map