import { parseLocator } from '../shared/locator.js';
import { pullItemCodec, trashItemCodec } from '../shared/worklist-items.js';
import { createWorklist } from './worklist.js';
import { createPullHandler } from './pull-worker.js';
import { createTrashHandler } from './trash-worker.js';
const pullTarget = (item) => `${parseLocator(item.locator).hash}/${item.mount_uuid ?? ''}`;
/** The keepstore's two worklists, persisted in its state database, opened (resumed) and running. */
export async function createWorklists(options) {
    const { keepstore, db, metrics, logger } = options;
    const pull = createWorklist({
        name: 'pull',
        concurrency: options.pullConcurrency,
        db: db.sublevel('pull'),
        codec: pullItemCodec,
        logger: logger.child({ worklist: 'pull' }),
        handle: createPullHandler({
            keepstore,
            signer: keepstore.signer,
            client: options.client,
            logger: logger.child({ worklist: 'pull' }),
            dropDuplicates: (done) => {
                const target = pullTarget(done);
                return pull.drop((queued) => pullTarget(queued) === target);
            },
            onBytes: (n) => metrics.pullBytes.inc(n),
            onFailure: (reason) => metrics.pullFailures.inc({ reason }),
        }),
    });
    const trash = createWorklist({
        name: 'trash',
        concurrency: options.trashConcurrency,
        db: db.sublevel('trash'),
        codec: trashItemCodec,
        logger: logger.child({ worklist: 'trash' }),
        handle: createTrashHandler({ keepstore, logger: logger.child({ worklist: 'trash' }) }),
    });
    await pull.open();
    await trash.open();
    return {
        pull,
        trash,
        isKnownServer: options.isKnownServer,
        async close() {
            await Promise.all([pull.close(), trash.close()]);
        },
    };
}
//# sourceMappingURL=worklists.js.map