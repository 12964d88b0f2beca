import { KeepError } from '../shared/errors.js';
import { createLogger } from '../shared/logger.js';
import { createWorklistStore } from './worklist-store.js';
const OUTCOMES = new Set(['done', 'failed', 'skipped']);
export function createWorklist(options) {
    const { name, handle } = options;
    if (!Number.isSafeInteger(options.concurrency) || options.concurrency < 1) {
        throw new KeepError('KEEP_CONFIG', `worklist ${name}: concurrency must be a whole number ≥ 1, not ${options.concurrency}`);
    }
    const base = options.logger ?? createLogger({ level: 'silent' });
    const logger = base.bindings()['worklist'] === undefined ? base.child({ worklist: name }) : base;
    const store = options.store ?? createWorklistStore(options.db, options.codec, { logger, name });
    const controller = new AbortController();
    const running = new Set();
    let idleWaiters = [];
    let state = 'new';
    let current = { items: [], head: 0, digest: null, receivedAt: null, counters: { done: 0, failed: 0, skipped: 0 } };
    const queued = () => current.items.length - current.head;
    function assertOpen() {
        if (state !== 'open')
            throw new KeepError('KEEP_INTERNAL', `worklist ${name}: ${state === 'new' ? 'not open yet' : 'closed'}`);
    }
    function wakeIdle() {
        const waiters = idleWaiters;
        idleWaiters = [];
        for (const resolve of waiters)
            resolve();
    }
    function pump() {
        while (state === 'open' && running.size < options.concurrency && queued() > 0) {
            const entry = current.items[current.head];
            current.head++;
            const run = execute(entry, current);
            running.add(run);
            void run.finally(() => {
                running.delete(run);
                pump();
            });
        }
        if (running.size === 0 && queued() === 0)
            wakeIdle();
    }
    async function execute(entry, list) {
        let outcome;
        try {
            outcome = await handle(entry.item, { signal: controller.signal });
            if (!OUTCOMES.has(outcome))
                throw new KeepError('KEEP_INTERNAL', `handler returned ${String(outcome)}, not an ItemOutcome`);
        }
        catch (err) {
            if (!controller.signal.aborted)
                logger.warn({ err, item: entry.item }, 'item failed');
            outcome = 'failed';
        }
        // Closing: leave the item persisted so that a restart runs it again.
        if (controller.signal.aborted)
            return;
        list.counters[outcome]++;
        try {
            options.onOutcome?.(entry.item, outcome);
        }
        catch (err) {
            logger.error({ err }, 'onOutcome hook threw');
        }
        try {
            await store.finish(entry.key, { ...list.counters });
        }
        catch (err) {
            logger.error({ err, key: entry.key }, 'could not remove a finished item from the state database');
        }
    }
    return {
        async open() {
            if (state !== 'new')
                throw new KeepError('KEEP_INTERNAL', `worklist ${name}: already ${state === 'open' ? 'open' : 'closed'}`);
            const { meta, items } = await store.load();
            current = { items, head: 0, digest: meta.digest, receivedAt: meta.receivedAt, counters: { ...meta.counters } };
            state = 'open';
            if (items.length > 0)
                logger.info({ count: items.length, digest: meta.digest }, 'resuming list');
            pump();
        },
        async replace(items, meta) {
            assertOpen();
            const stored = await store.replace(items, meta);
            if (state !== 'open')
                return;
            current = {
                items: stored,
                head: 0,
                digest: meta.digest,
                receivedAt: meta.receivedAt.toISOString(),
                counters: { done: 0, failed: 0, skipped: 0 },
            };
            pump();
        },
        async drop(predicate) {
            assertOpen();
            const kept = [];
            const dropped = [];
            for (let i = current.head; i < current.items.length; i++) {
                const entry = current.items[i];
                if (predicate(entry.item))
                    dropped.push(entry.key);
                else
                    kept.push(entry);
            }
            if (dropped.length === 0)
                return 0;
            current.items = kept;
            current.head = 0;
            pump();
            await store.remove(dropped);
            return dropped.length;
        },
        status() {
            const items = new Array(queued());
            for (let i = current.head; i < current.items.length; i++)
                items[i - current.head] = current.items[i].item;
            return {
                received_at: current.receivedAt,
                digest: current.digest,
                queued: items.length,
                in_progress: running.size,
                ...current.counters,
                items,
            };
        },
        idle() {
            if (state === 'closed' || (running.size === 0 && queued() === 0))
                return Promise.resolve();
            return new Promise((resolve) => idleWaiters.push(resolve));
        },
        async close() {
            if (state === 'closed')
                return;
            state = 'closed';
            controller.abort(new KeepError('KEEP_UNAVAILABLE', `worklist ${name}: closing`));
            await Promise.all(running);
            await store.flush();
            wakeIdle();
        },
    };
}
/**
 * The JSON body of `GET /pull` / `GET /trash`. Items go through the list's own
 * serialiser because trash items hold bigint mtimes, which JSON.stringify refuses.
 */
export function serializeStatus(status, serializeItems) {
    const { items, ...counters } = status;
    return `${JSON.stringify(counters).slice(0, -1)},"items":${serializeItems(items)}}`;
}
//# sourceMappingURL=worklist.js.map