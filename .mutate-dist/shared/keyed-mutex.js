/**
 * One lock per key: `run(key, fn)` calls wait for every earlier call with the
 * same key (first come, first served) and run alone; calls with different keys
 * do not wait for each other. A key's entry is dropped as soon as its last
 * caller finishes, so a million distinct keys leave nothing behind.
 */
export class KeyedMutex {
    tails = new Map();
    async run(key, fn) {
        const previous = this.tails.get(key);
        let release;
        const done = new Promise((resolve) => {
            release = resolve;
        });
        const tail = previous ? previous.then(() => done) : done;
        this.tails.set(key, tail);
        try {
            if (previous)
                await previous;
            return await fn();
        }
        finally {
            release();
            if (this.tails.get(key) === tail)
                this.tails.delete(key);
        }
    }
    /** Keys with a running or waiting caller (for tests and metrics). */
    get size() {
        return this.tails.size;
    }
}
//# sourceMappingURL=keyed-mutex.js.map