import { setTimeout as delay } from 'node:timers/promises';
import { pullItemCodec, trashItemCodec } from '../shared/worklist-items.js';
const EMPTY = '[]';
/**
 * Sends every server its complete pull list, then its trash list, servers
 * concurrently, each request retried. Empty lists are sent on purpose: a new
 * list replaces the keepstore's, so `[]` clears work a previous run left.
 * With `clearFirst`, every server first gets an empty trash list, and nothing
 * else is sent unless all of them accepted it (the set of servers or mounts
 * changed, so old trash lists may rest on a layout that no longer holds).
 */
export async function commitChanges(sets, options) {
    const results = sets.map((s) => blank(s.server));
    if (options.clearFirst) {
        await Promise.all(sets.map((s, i) => send(s.server, '/trash', EMPTY, results[i], 'trash', options)));
        if (results.some((r) => r.trash === 'failed'))
            return results;
        options.logger.info({ servers: sets.length }, 'servers or mounts changed since the last run: cleared every trash list first');
    }
    await Promise.all(sets.map(async (s, i) => {
        const result = results[i];
        await send(s.server, '/pull', () => listBody(s.pulls, pullItemCodec), result, 'pull', options);
        await send(s.server, '/trash', () => listBody(s.trashes, trashItemCodec), result, 'trash', options);
    }));
    return results;
}
/** A refused run: an empty trash list to each of `servers` (those that answered), no pull list at all. */
export async function clearTrashLists(servers, options) {
    const results = servers.map(blank);
    await Promise.all(servers.map((s, i) => send(s, '/trash', EMPTY, results[i], 'trash', options)));
    return results;
}
const ITEMS_PER_PIECE = 512;
/**
 * A list body in pieces of a few hundred items — the same bytes as
 * `serializePullList` / `serializeTrashList`, streamed, so three servers'
 * 100 k-item lists never sit in memory as whole strings at once.
 */
export function* listBody(items, codec) {
    if (items.length === 0) {
        yield EMPTY;
        return;
    }
    for (let start = 0; start < items.length; start += ITEMS_PER_PIECE) {
        const piece = items.slice(start, start + ITEMS_PER_PIECE).map(codec.encode).join(',');
        yield `${start === 0 ? '[' : ','}${piece}${start + ITEMS_PER_PIECE >= items.length ? ']' : ''}`;
    }
}
function blank(server) {
    return { server: server.uuid, url: server.url, pull: 'not-sent', trash: 'not-sent', error: undefined };
}
async function send(server, path, body, result, which, options) {
    const attempts = options.attempts ?? 3;
    const sleep = options.sleep ?? ((ms) => delay(ms));
    let wait = options.retryDelayMs ?? 1000;
    for (let attempt = 1;; attempt++) {
        try {
            await options.client.putJson(server.url, path, typeof body === 'string' ? body : body());
            result[which] = 'sent';
            return;
        }
        catch (err) {
            if (attempt >= attempts) {
                result[which] = 'failed';
                result.error = `PUT ${path}: ${err.message}`;
                options.logger.error({ server: server.uuid, url: server.url, attempts }, `PUT ${path} failed: ${err.message}`);
                return;
            }
            options.logger.warn({ server: server.uuid, attempt }, `PUT ${path} failed, retrying: ${err.message}`);
            await sleep(wait);
            wait *= 2;
        }
    }
}
//# sourceMappingURL=commit.js.map