import t from 'tap';
import { createFileLock } from '../../datamanager/lock.js';
t.test('lock: one holder at a time; released, it can be taken again', async (t) => {
    const dir = t.testdir({});
    const first = await createFileLock(dir).tryAcquire();
    t.ok(first, 'first instance takes it');
    t.equal(await createFileLock(dir).tryAcquire(), undefined, 'a second instance finds it held');
    await first.release();
    await first.release();
    const again = await createFileLock(dir).tryAcquire();
    t.ok(again, 'free after release (release is idempotent)');
    await again.release();
});
t.test('lock: the state directory is created when missing, and named in the description', async (t) => {
    const dir = `${t.testdir({})}/a/b`;
    const lock = createFileLock(dir);
    t.match(lock.description, /a\/b\/datamanager\.lock$/);
    const held = await lock.tryAcquire();
    t.ok(held);
    await held.release();
});
//# sourceMappingURL=lock.test.js.map