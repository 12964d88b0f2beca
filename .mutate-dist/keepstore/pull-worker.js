import { parseLocator } from '../shared/locator.js';
/** The token pulls are signed for (PROTOCOL.md §4), as Keep does. */
export const PULL_TOKEN = 'keepstore-token-used-for-pulling-data-from-same-cluster';
/**
 * One pull item: skip it when the target mount already holds the block,
 * otherwise try each listed server once, in order, with a locally signed
 * locator; the volume verifies the MD5 while writing. Concurrent items for the
 * same block and target share one transfer.
 */
export function createPullHandler(deps) {
    const inFlight = new Map();
    return async (item, { signal }) => {
        const key = `${parseLocator(item.locator).hash}/${item.mount_uuid ?? ''}`;
        const running = inFlight.get(key);
        if (running)
            return (await running) === 'failed' ? 'failed' : 'skipped';
        const p = pullOne(deps, item, signal);
        inFlight.set(key, p);
        try {
            return await p;
        }
        finally {
            inFlight.delete(key);
        }
    };
}
async function pullOne(deps, item, signal) {
    const loc = parseLocator(item.locator);
    const size = loc.size ?? 0;
    const target = item.mount_uuid || undefined;
    if (await deps.keepstore.holdsOn(target, loc.hash)) {
        await deps.dropDuplicates(item);
        return 'skipped';
    }
    const bare = `${loc.hash}+${size}`;
    const signed = deps.signer ? deps.signer.sign(bare, PULL_TOKEN) : bare;
    const reasons = [];
    for (const server of item.servers) {
        if (signal.aborted)
            break;
        try {
            const body = await deps.client.getBlock(server, signed, { signal, token: PULL_TOKEN });
            try {
                await deps.keepstore.writeTo(target, loc.hash, body, { expectedSize: size, signal });
            }
            finally {
                body.destroy();
            }
            deps.onBytes?.(size);
            await deps.dropDuplicates(item);
            deps.logger.info({ hash: loc.hash, server, mount: target ?? null, bytes: size }, 'pulled block');
            return 'done';
        }
        catch (err) {
            const reason = `${server}: ${err.code ?? ''} ${err.message}`.trim();
            reasons.push(reason);
            deps.onFailure?.(err.code ?? 'error');
        }
    }
    deps.logger.warn({ hash: loc.hash, servers: item.servers, reasons }, 'pull failed on every server');
    return 'failed';
}
//# sourceMappingURL=pull-worker.js.map