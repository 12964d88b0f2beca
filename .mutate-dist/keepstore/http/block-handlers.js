import { pipeline } from 'node:stream/promises';
import { KeepError } from '../../shared/errors.js';
import { EMPTY_BLOCK_HASH } from '../../shared/hash.js';
import { parseLocator } from '../../shared/locator.js';
import { MAX_BLOCK_SIZE } from '../volumes/volume.js';
import { requireAdmin } from './context.js';
import { requireToken } from '../../shared/auth.js';
function parseClasses(header) {
    const classes = header.split(',').map((s) => s.trim()).filter(Boolean);
    return classes.length ? classes : undefined;
}
export const putBlock = async (ctx, { keepstore }) => {
    const loc = parseLocator(ctx.params.locator ?? '');
    const declared = ctx.get('content-length');
    if (declared && Number(declared) > MAX_BLOCK_SIZE)
        throw new KeepError('KEEP_TOO_LARGE', 'block exceeds 64 MiB');
    if (declared && loc.size !== undefined && Number(declared) !== loc.size) {
        throw new KeepError('KEEP_SIZE_MISMATCH', `size hint ${loc.size} but Content-Length ${declared}`);
    }
    const classes = parseClasses(ctx.get('x-keep-storage-classes'));
    const ac = new AbortController();
    ctx.req.once('aborted', () => ac.abort());
    const result = await keepstore.put(loc.hash, ctx.req, {
        ...(loc.size !== undefined ? { expectedSize: loc.size } : {}),
        ...(classes ? { classes } : {}),
        signal: ac.signal,
    });
    ctx.state.bytesIn = result.size;
    ctx.set('X-Keep-Replicas-Stored', String(result.replicas));
    ctx.set('X-Keep-Storage-Classes-Confirmed', Object.entries(result.classesConfirmed)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([c, n]) => `${c}=${n}`)
        .join(', '));
    ctx.type = 'text/plain';
    ctx.body = `${keepstore.locatorFor(loc.hash, result.size, ctx.state.token)}\n`;
};
/** Locator checks common to GET and HEAD (PROTOCOL.md §2 order), before any disk access. */
function readableLocator(ctx, deps, needSize) {
    const loc = parseLocator(ctx.params.locator ?? '');
    if (needSize && loc.size === undefined && loc.hash !== EMPTY_BLOCK_HASH) {
        throw new KeepError('KEEP_METHOD_NOT_ALLOWED', 'a size hint is required');
    }
    deps.keepstore.checkRead(loc, ctx.state.token);
    return loc.hash;
}
export const getBlock = async (ctx, deps) => {
    const hash = readableLocator(ctx, deps, true);
    const ac = new AbortController();
    // 'close' also fires after every completed response: abort only a cut-off one.
    ctx.res.once('close', () => {
        if (!ctx.res.writableFinished)
            ac.abort();
    });
    const block = await deps.keepstore.open(hash, ac.signal);
    // From here on we write the response ourselves, so that a hash failure found
    // after bytes went out cuts the connection instead of completing a body.
    ctx.respond = false;
    const res = ctx.res;
    res.statusCode = 200;
    for (const [k, v] of Object.entries(ctx.response.headers))
        if (v !== undefined)
            res.setHeader(k, v);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', String(block.size));
    ctx.state.bytesOut = block.size;
    if (block.first === undefined || block.first.length === block.size) {
        // Whole block in one verified chunk (the volume holds back the last chunk until its hash checks out).
        block.rest.resume();
        res.end(block.first);
        return;
    }
    res.write(block.first);
    try {
        await pipeline(block.rest, res);
    }
    catch (err) {
        res.destroy();
        deps.logger.warn({ err, hash, mount: block.mount.uuid, reqId: ctx.state.requestId }, 'GET stopped short');
    }
};
export const headBlock = async (ctx, deps) => {
    const hash = readableLocator(ctx, deps, false);
    const stat = await deps.keepstore.head(hash);
    ctx.status = 200;
    ctx.length = stat.size;
};
/** An admin action on one block by its locator: 200 with an empty body. */
function adminBlockAction(action) {
    return async (ctx, deps) => {
        requireAdmin(ctx, deps);
        await action(deps, parseLocator(ctx.params.locator ?? '').hash);
        ctx.status = 200;
        ctx.body = '';
    };
}
export const deleteBlock = adminBlockAction((deps, hash) => deps.keepstore.delete(hash));
export const untrashBlock = adminBlockAction((deps, hash) => deps.keepstore.untrash(hash));
/** TOUCH arrives outside Koa (Node's parser rejects the method): see client-error.ts. */
export async function touchBlock(locator, token, deps) {
    requireToken(token, deps.keepstore.cluster.systemRootToken);
    const loc = parseLocator(locator);
    await deps.keepstore.touch(loc.hash);
}
//# sourceMappingURL=block-handlers.js.map