import http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { requireToken, tokenFromAuthorization } from '../shared/auth.js';
import { requireDatamanager } from '../shared/config.js';
import { isKeepError, KeepError } from '../shared/errors.js';
import { DatamanagerMetrics } from './metrics.js';
import { runDatamanager } from './run.js';
/**
 * The datamanager as a service: one run every `datamanager.period` until
 * `signal` aborts. A refused run, a held lock, even a crashed run is logged
 * and the next period tries again. When `datamanager.listen` is set, serves
 * `/metrics` and `/_health/ping`, both guarded by `cluster.managementToken`
 * as the keepstore's are.
 */
export async function startService(options) {
    const dm = requireDatamanager(options.config);
    const metrics = new DatamanagerMetrics();
    const server = dm.listen === undefined ? undefined : await listen(dm.listen, options, metrics);
    const address = server === undefined ? undefined : { host: dm.listen.host, port: server.address().port };
    if (address !== undefined)
        options.logger.info(address, 'datamanager metrics listening');
    const wait = options.wait ?? waitFor;
    const done = (async () => {
        try {
            while (!options.signal.aborted) {
                let result;
                try {
                    result = await runDatamanager(options);
                    if (result.report !== undefined)
                        metrics.observe(result.report);
                    else
                        metrics.observeLocked();
                }
                catch (err) {
                    options.logger.error({ err }, `datamanager run failed: ${err.message}`);
                }
                options.onRun?.(result);
                if (options.signal.aborted)
                    break;
                await wait(dm.periodMs, options.signal);
            }
        }
        finally {
            if (server !== undefined)
                await new Promise((resolve) => server.close(() => resolve()));
        }
    })();
    return { address, metrics, done };
}
async function waitFor(ms, signal) {
    await delay(ms, undefined, { signal }).catch(() => { });
}
async function listen(at, options, metrics) {
    const managementToken = options.config.cluster.managementToken;
    const server = http.createServer((req, res) => {
        void handle(req, res, managementToken, metrics, options.logger);
    });
    await new Promise((resolve, reject) => {
        server.once('error', (err) => reject(new KeepError('KEEP_CONFIG', `config: datamanager.listen: cannot listen on ${at.host}:${at.port}: ${err.code ?? err.message}`)));
        server.listen(at.port, at.host, () => resolve());
    });
    return server;
}
async function handle(req, res, managementToken, metrics, logger) {
    try {
        const route = `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`;
        if (route !== 'GET /metrics' && route !== 'GET /_health/ping')
            throw new KeepError('KEEP_BAD_REQUEST', 'Bad Request');
        requireToken(tokenFromAuthorization(req.headers.authorization), managementToken);
        if (route === 'GET /metrics') {
            const body = await metrics.registry.metrics();
            res.writeHead(200, { 'Content-Type': metrics.registry.contentType });
            res.end(body);
        }
        else {
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end('{"health":"OK"}');
        }
    }
    catch (err) {
        const status = isKeepError(err) ? err.status : 500;
        if (status === 500)
            logger.error({ err }, 'metrics request failed');
        res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`${isKeepError(err) ? err.message : 'internal error'}\n`);
    }
}
//# sourceMappingURL=service.js.map