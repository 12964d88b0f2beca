import { KeepError } from '../../shared/errors.js';
import { readBody } from '../../shared/read-body.js';
import { parsePullList, parseTrashList, serializePullList, serializeTrashList, listDigest, } from '../../shared/worklist-items.js';
import { serializeStatus } from '../worklist.js';
import { requireAdmin } from './context.js';
/** Lists are capped: a 64 MiB list is ~300 k items, more than any sane run sends. */
export const MAX_LIST_BYTES = 64 * 1024 * 1024;
function worklists(deps) {
    if (!deps.worklists)
        throw new KeepError('KEEP_UNAVAILABLE', 'worklists are not running');
    return deps.worklists;
}
function listContext(deps) {
    const w = worklists(deps);
    return { isKnownServer: (url) => w.isKnownServer(url), isKnownMount: (uuid) => deps.keepstore.mount(uuid) !== undefined };
}
/**
 * PUT /pull and PUT /trash: validate the whole list first (any fault → 400 and
 * the previous list stays), then replace atomically; 200 only once persisted.
 */
function putList(name, parse, pick) {
    return async (ctx, deps) => {
        requireAdmin(ctx, deps);
        const body = await readBody(ctx.req, MAX_LIST_BYTES);
        ctx.state.bytesIn = body.length;
        const items = parse(body.toString('utf8'), listContext(deps));
        const digest = listDigest(body);
        await pick(deps).replace(items, { digest, receivedAt: new Date(deps.keepstore.now()) });
        deps.logger.info({ list: name, count: items.length, digest, reqId: ctx.state.requestId }, `${name} list accepted`);
        ctx.status = 200;
        ctx.body = '';
    };
}
function getList(pick, serialize) {
    return async (ctx, deps) => {
        requireAdmin(ctx, deps);
        ctx.type = 'application/json';
        ctx.body = `${serializeStatus(pick(deps).status(), serialize)}\n`;
    };
}
export const putPullList = putList('pull', parsePullList, (d) => worklists(d).pull);
export const putTrashList = putList('trash', parseTrashList, (d) => worklists(d).trash);
export const getPullList = getList((d) => worklists(d).pull, serializePullList);
export const getTrashList = getList((d) => worklists(d).trash, serializeTrashList);
//# sourceMappingURL=list-handlers.js.map