import { KeepError } from '../shared/errors.js';
import { ADMIN_TOKEN } from './children.js';
import { adminGet } from './load.js';
/** Pull-list throughput must reach this fraction of the bare copy loop's. */
export const TARGET_PULL_RATIO = 0.9;
const POLL_MS = 50;
const PULL_TIMEOUT_MS = 10 * 60_000;
/**
 * The floor for a pull: `concurrency` workers each GET a block from `from`
 * (signed locator + token, body read into memory) and PUT it to `to`, until
 * every locator is copied. Resolves to the seconds it took.
 */
export async function copyLoop(agent, from, to, signedLocators, size, concurrency) {
    let next = 0;
    const start = performance.now();
    const worker = async () => {
        while (next < signedLocators.length) {
            const locator = signedLocators[next++];
            const got = await agent.request({ origin: from, path: `/${locator}`, method: 'GET', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
            const body = Buffer.from(await got.body.arrayBuffer());
            if (got.statusCode !== 200 || body.length !== size)
                throw new KeepError('KEEP_INTERNAL', `GET ${from}/${locator.slice(0, 32)}: HTTP ${got.statusCode}, ${body.length} bytes`);
            const put = await agent.request({ origin: to, path: `/${locator.slice(0, 32)}`, method: 'PUT', headers: { 'content-length': String(size) }, body });
            const answer = await put.body.text();
            if (put.statusCode !== 200)
                throw new KeepError('KEEP_INTERNAL', `PUT ${to}/${locator.slice(0, 32)}: HTTP ${put.statusCode} ${answer.trim()}`);
        }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return (performance.now() - start) / 1000;
}
/**
 * Sends `to` a pull list of every locator from `from` and waits, polling
 * GET /pull every 50 ms, until nothing is queued or in progress. Resolves to
 * the seconds from sending the list to that moment, and the final counters.
 * A refused list (any status but 200) is an error naming the status and body.
 */
export async function pullAll(agent, to, locators, from) {
    const list = JSON.stringify(locators.map((locator) => ({ locator, servers: [from] })));
    const start = performance.now();
    const res = await agent.request({ origin: to, path: '/pull', method: 'PUT', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: list });
    const answer = await res.body.text();
    if (res.statusCode !== 200)
        throw new KeepError('KEEP_INTERNAL', `PUT ${to}/pull answered ${res.statusCode}: ${answer.trim().slice(0, 200)}`);
    for (;;) {
        const raw = JSON.parse((await adminGet(agent, to, '/pull', ADMIN_TOKEN)).toString('utf8'));
        const status = { queued: raw.queued, in_progress: raw.in_progress, done: raw.done, failed: raw.failed, skipped: raw.skipped };
        if (status.queued === 0 && status.in_progress === 0)
            return { seconds: (performance.now() - start) / 1000, status };
        if (performance.now() - start > PULL_TIMEOUT_MS)
            throw new KeepError('KEEP_TIMEOUT', `pull list on ${to} not done after 10 min: ${JSON.stringify(status)}`);
        await new Promise((r) => setTimeout(r, POLL_MS));
    }
}
//# sourceMappingURL=pull-steps.js.map