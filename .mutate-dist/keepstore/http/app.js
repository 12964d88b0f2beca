import Koa from 'koa';
import { KeepError } from '../../shared/errors.js';
import { observe, limitConcurrency } from './middleware.js';
import { createRouter } from './routes.js';
const EXEMPT = new Set(['/_health/ping', '/metrics']);
/** The keepstore's Koa app: observe → OPTIONS → limit → routes → 400 for anything else. */
export function createApp(deps, options) {
    const app = new Koa();
    app.silent = true; // errors are rendered and logged by `observe`
    const router = createRouter(deps);
    app.use(observe(deps));
    app.use(async (ctx, next) => {
        if (ctx.method !== 'OPTIONS')
            return next();
        ctx.state.route = 'options';
        ctx.status = 200;
        ctx.body = '';
    });
    app.use(limitConcurrency(options.maxConcurrentRequests, (path) => EXEMPT.has(path)));
    app.use(router.routes());
    app.use(async () => {
        // Unknown path or method: 400, never 404/405 from routing (PROTOCOL.md §3).
        throw new KeepError('KEEP_BAD_REQUEST', 'Bad Request');
    });
    return app;
}
//# sourceMappingURL=app.js.map