import t from 'tap';
import { KeyedMutex } from '../../shared/keyed-mutex.js';
/** A promise the test resolves by hand. */
function gate() {
    let open;
    const promise = new Promise((resolve) => (open = resolve));
    return { promise, open };
}
t.test('keyed mutex: callers of one key run one at a time, in arrival order', async (t) => {
    const mutex = new KeyedMutex();
    const order = [];
    const first = gate();
    const a = mutex.run('k', async () => {
        order.push('a start');
        await first.promise;
        order.push('a end');
        return 'a';
    });
    const b = mutex.run('k', async () => {
        order.push('b');
        return 'b';
    });
    const c = mutex.run('k', async () => {
        order.push('c');
        return 'c';
    });
    await Promise.resolve();
    t.same(order, ['a start'], 'b and c wait for a');
    first.open();
    t.same(await Promise.all([a, b, c]), ['a', 'b', 'c'], 'each gets its own result');
    t.same(order, ['a start', 'a end', 'b', 'c']);
});
t.test('keyed mutex: different keys do not wait for each other', async (t) => {
    const mutex = new KeyedMutex();
    const held = gate();
    const slow = mutex.run('x', () => held.promise);
    t.equal(await mutex.run('y', async () => 'y'), 'y', 'y finishes while x is held');
    held.open();
    await slow;
});
t.test('keyed mutex: a failing caller releases the key', async (t) => {
    const mutex = new KeyedMutex();
    const failing = mutex.run('k', async () => {
        throw new Error('boom');
    });
    const next = mutex.run('k', async () => 'next');
    await t.rejects(failing, { message: 'boom' });
    t.equal(await next, 'next');
});
t.test('keyed mutex: idle keys leave no entries behind', async (t) => {
    const mutex = new KeyedMutex();
    await Promise.all(Array.from({ length: 1000 }, (_, i) => mutex.run(`key-${i % 10}`, async () => i)));
    t.equal(mutex.size, 0);
    const held = gate();
    const running = mutex.run('busy', () => held.promise);
    t.equal(mutex.size, 1, 'a running key is counted');
    held.open();
    await running;
    t.equal(mutex.size, 0);
});
//# sourceMappingURL=keyed-mutex.test.js.map