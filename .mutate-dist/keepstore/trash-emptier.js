/** Every `intervalMs`, deletes trashed copies whose blobTrashLifetime is over. */
export function startTrashEmptier(keepstore, intervalMs, logger, onDeleted) {
    let running;
    const runOnce = () => {
        running ??= keepstore
            .emptyTrash()
            .then((n) => {
            if (n > 0)
                logger.info({ deleted: n }, 'emptied trash');
            onDeleted?.(n);
            return n;
        })
            .finally(() => (running = undefined));
        return running;
    };
    const timer = intervalMs > 0 ? setInterval(() => void runOnce().catch((err) => logger.error({ err }, 'emptying trash failed')), intervalMs) : undefined;
    timer?.unref();
    return {
        runOnce,
        async stop() {
            if (timer)
                clearInterval(timer);
            await running?.catch(() => 0);
        },
    };
}
//# sourceMappingURL=trash-emptier.js.map