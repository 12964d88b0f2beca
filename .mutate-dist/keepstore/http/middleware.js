import { randomBytes } from 'node:crypto';
import { KeepError, isKeepError } from '../../shared/errors.js';
import { tokenOf } from './context.js';
export const CORS_HEADERS = {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Methods': 'GET, HEAD, PUT, OPTIONS',
    'Access-Control-Allow-Headers': 'Authorization, Content-Length, Content-Type, X-Keep-Desired-Replicas, X-Keep-Signature, X-Keep-Storage-Classes',
    'Access-Control-Expose-Headers': 'X-Keep-Locator, X-Keep-Replicas-Stored, X-Keep-Storage-Classes-Confirmed',
};
const REQUEST_ID = /^[\w.:-]{1,128}$/;
// Random bytes drawn in batches: one syscall per 1,638 request ids, not one each.
let pool = Buffer.alloc(0);
let offset = 0;
export function newRequestId() {
    if (offset + 10 > pool.length) {
        pool = randomBytes(16 * 1024);
        offset = 0;
    }
    offset += 10;
    return `req-${pool.toString('hex', offset - 10, offset)}`;
}
/** Echoes a sane X-Request-Id or makes one. */
export function requestIdOf(header) {
    return header && REQUEST_ID.test(header) ? header : newRequestId();
}
/**
 * Outermost middleware: request id, CORS, the one error renderer (KeepError →
 * status + one line of text), access log and request metrics.
 */
export function observe(deps) {
    return async (ctx, next) => {
        const c = ctx;
        const started = process.hrtime.bigint();
        c.state.requestId = requestIdOf(ctx.get('x-request-id') || undefined);
        c.state.route = 'unknown';
        c.state.token = tokenOf(ctx);
        c.state.bytesIn = 0;
        c.state.bytesOut = 0;
        ctx.set('X-Request-Id', c.state.requestId);
        ctx.set(CORS_HEADERS);
        try {
            await next();
        }
        catch (err) {
            renderError(c, err, deps);
        }
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const status = ctx.respond === false ? ctx.res.statusCode : ctx.status;
        deps.metrics.observeRequest(c.state.route, ctx.method, status, seconds, c.state.bytesIn, c.state.bytesOut);
        const entry = {
            reqId: c.state.requestId,
            method: ctx.method,
            path: redactPath(ctx.path),
            status,
            bytesIn: c.state.bytesIn,
            bytesOut: c.state.bytesOut,
            ms: Math.round(seconds * 1e4) / 10,
        };
        if (status >= 500)
            deps.logger.warn(entry, 'request');
        else
            deps.logger.debug(entry, 'request');
    };
}
function renderError(ctx, err, deps) {
    const keepErr = isKeepError(err) ? err : undefined;
    if (!keepErr)
        deps.logger.error({ err, reqId: ctx.state.requestId }, 'unhandled error');
    const status = keepErr ? keepErr.status : 500;
    const message = keepErr ? keepErr.message : 'Internal Server Error';
    if (ctx.headerSent || ctx.respond === false) {
        // Too late for a status: cut the connection so the client sees a short body.
        ctx.res.destroy();
        return;
    }
    ctx.status = status;
    ctx.type = 'text/plain';
    ctx.body = `${message.split('\n')[0]}\n`;
    if (!ctx.req.complete)
        ctx.set('Connection', 'close'); // its body was never read
}
/** Signatures ride in locators; never log them. */
export function redactPath(path) {
    return path.replace(/\+A[0-9a-f]{40}@[0-9a-f]{8}/g, '+A…');
}
/**
 * At most `max` requests run at once; up to `max` more wait in a queue; beyond
 * that → 503 at once. Health and metrics are exempt so operators can still look.
 */
export function limitConcurrency(max, exempt) {
    let running = 0;
    const queue = [];
    return async (ctx, next) => {
        if (exempt(ctx.path))
            return next();
        if (running >= max) {
            if (queue.length >= max)
                throw new KeepError('KEEP_UNAVAILABLE', 'server is busy, try again');
            await new Promise((resolve) => queue.push(resolve));
        }
        else {
            running++;
        }
        try {
            await next();
        }
        finally {
            const wake = queue.shift();
            if (wake)
                wake();
            else
                running--;
        }
    };
}
//# sourceMappingURL=middleware.js.map