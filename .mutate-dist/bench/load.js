import { Agent } from 'undici';
import { KeepError } from '../shared/errors.js';
import { bodyOf } from './blocks.js';
function percentile(sorted, p) {
    if (sorted.length === 0)
        return 0;
    return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}
/**
 * Runs `concurrency` workers, each issuing `job` back to back, until the
 * limits are reached; requests in flight at that moment finish and count.
 * The first failed request fails the phase (a benchmark with errors measures
 * nothing worth reporting). `first` numbers the jobs on from an earlier run.
 */
export async function runPhase(concurrency, limits, job, first = 0) {
    const latencies = [];
    let bytes = 0;
    let issued = first;
    let stop = false;
    const start = performance.now();
    const worker = async (w) => {
        while (!stop) {
            const t0 = performance.now();
            // Not `bytes += await …`: that reads `bytes` before the await and loses the other workers' updates.
            const moved = await job(w, issued++);
            bytes += moved;
            const t1 = performance.now();
            latencies.push(t1 - t0);
            if ((t1 - start) / 1000 >= limits.seconds || bytes >= limits.maxBytes)
                stop = true;
        }
    };
    try {
        await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
    }
    catch (err) {
        stop = true;
        throw err;
    }
    return { bytes, seconds: (performance.now() - start) / 1000, latencies };
}
/** Totals over the runs of one phase: rates over the summed time, percentiles over every request. */
export function summarize(samples) {
    const latencies = samples.flatMap((s) => s.latencies).sort((a, b) => a - b);
    const bytes = samples.reduce((n, s) => n + s.bytes, 0);
    const seconds = samples.reduce((n, s) => n + s.seconds, 0);
    return {
        requests: latencies.length,
        bytes,
        seconds,
        requestsPerSecond: latencies.length / seconds,
        megabytesPerSecond: bytes / 1e6 / seconds,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
    };
}
/** The one undici Agent of the load generator: keep-alive, enough sockets for every worker. */
export function createLoadAgent() {
    return new Agent({ connections: 256, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000, headersTimeout: 120_000, bodyTimeout: 120_000 });
}
function authHeaders(token) {
    return token ? { authorization: `Bearer ${token}` } : {};
}
async function failure(what, statusCode, body) {
    const text = (await body.text().catch(() => '')).trim().slice(0, 200);
    return new KeepError('KEEP_INTERNAL', `${what}: HTTP ${statusCode} ${text}`);
}
/** PUT /<hash> with the block; resolves to the locator the server answered (signed when `token` is given). */
export async function putBlock(agent, origin, block, token) {
    const res = await agent.request({
        origin,
        path: `/${block.hash}`,
        method: 'PUT',
        headers: { 'content-length': String(block.size), 'content-type': 'application/octet-stream', ...authHeaders(token) },
        body: bodyOf(block),
    });
    if (res.statusCode !== 200)
        throw await failure(`PUT ${origin}/${block.hash}`, res.statusCode, res.body);
    return (await res.body.text()).trim();
}
/** GET /<locator>; reads the whole body and checks its length. Resolves to the bytes received. */
export async function getBlock(agent, origin, locator, size, token) {
    const res = await agent.request({ origin, path: `/${locator}`, method: 'GET', headers: authHeaders(token) });
    if (res.statusCode !== 200)
        throw await failure(`GET ${origin}/${locator.slice(0, 40)}`, res.statusCode, res.body);
    let n = 0;
    for await (const chunk of res.body)
        n += chunk.length;
    if (n !== size)
        throw new KeepError('KEEP_INTERNAL', `GET ${origin}/${locator.slice(0, 40)}: ${n} bytes, expected ${size}`);
    return n;
}
/** GET with the admin token, body as a Buffer (index, pull status). */
export async function adminGet(agent, origin, path, token) {
    const res = await agent.request({ origin, path, method: 'GET', headers: authHeaders(token) });
    if (res.statusCode !== 200)
        throw await failure(`GET ${origin}${path}`, res.statusCode, res.body);
    return Buffer.from(await res.body.arrayBuffer());
}
//# sourceMappingURL=load.js.map