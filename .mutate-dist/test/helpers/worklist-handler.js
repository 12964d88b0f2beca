export function createControlledHandler() {
    const calls = [];
    const waiters = new Map();
    let inFlight = 0;
    let maxInFlight = 0;
    return {
        calls,
        get maxInFlight() {
            return maxInFlight;
        },
        handle(item, { signal }) {
            return new Promise((resolve, reject) => {
                inFlight++;
                maxInFlight = Math.max(maxInFlight, inFlight);
                let settled = false;
                const settle = () => {
                    if (settled)
                        return false;
                    settled = true;
                    inFlight--;
                    return true;
                };
                const call = {
                    item,
                    signal,
                    finish: (outcome) => {
                        if (settle())
                            resolve(outcome);
                    },
                    fail: (err) => {
                        if (settle())
                            reject(err);
                    },
                };
                signal.addEventListener('abort', () => call.fail(signal.reason), { once: true });
                const n = calls.push(call) - 1;
                for (const wake of waiters.get(n) ?? [])
                    wake(call);
                waiters.delete(n);
            });
        },
        started(n) {
            const call = calls[n];
            if (call !== undefined)
                return Promise.resolve(call);
            return new Promise((resolve) => waiters.set(n, [...(waiters.get(n) ?? []), resolve]));
        },
    };
}
/** A handler that answers at once: `outcomeOf(item)`, or a throw when that returns an Error. */
export function immediateHandler(outcomeOf = () => 'done') {
    const seen = [];
    return {
        seen,
        async handle(item) {
            seen.push(item);
            const outcome = outcomeOf(item);
            if (outcome instanceof Error)
                throw outcome;
            return outcome;
        },
    };
}
//# sourceMappingURL=worklist-handler.js.map