import t from 'tap';
import { createMemoryVolume, createMonotonicClock } from '../../../keepstore/volumes/memory-volume.js';
import { bytes, chunked, drain, md5, volumeSuite } from '../../helpers/volume-suite.js';
volumeSuite(t, 'memory volume', async (t, opts = {}) => {
    const volume = createMemoryVolume({ uuid: 'zzzzz-nyw5e-000000000000000', ...opts });
    await volume.open();
    t.teardown(() => volume.close());
    return { volume, corrupt: async (hash) => volume.corruptForTest(hash) };
});
t.test('memory volume: deviceId names the uuid', async (t) => {
    const volume = createMemoryVolume({ uuid: 'zzzzz-nyw5e-000000000000007' });
    t.equal(volume.deviceId, 'memory:zzzzz-nyw5e-000000000000007');
    t.equal(volume.driver, 'memory');
});
t.test('memory volume: an injected clock is kept to the nanosecond', async (t) => {
    const mtime = 1707249451308502673n;
    t.not(BigInt(Number(mtime)), mtime, 'the value does not survive a trip through Number');
    const volume = createMemoryVolume({ uuid: 'v', now: () => mtime });
    const data = Buffer.from('exact');
    t.equal((await volume.write(md5(data), chunked(data))).mtime, mtime);
    t.equal((await volume.stat(md5(data))).mtime, mtime);
});
t.test('memory volume: the default clock never repeats', async (t) => {
    const now = createMonotonicClock();
    const seen = Array.from({ length: 1000 }, () => now());
    t.ok(seen.every((v, i) => i === 0 || v > seen[i - 1]), 'strictly increasing');
    const volume = createMemoryVolume({ uuid: 'v' });
    const a = await volume.write(md5(Buffer.from('a')), chunked(Buffer.from('a')));
    const b = await volume.write(md5(Buffer.from('b')), chunked(Buffer.from('b')));
    t.ok(b.mtime > a.mtime, 'two writes get different mtimes');
});
t.test('memory volume: a write beyond its capacity fails KEEP_FULL', async (t) => {
    const volume = createMemoryVolume({ uuid: 'v', capacity: 1000 });
    const small = bytes(600, 1);
    await volume.write(md5(small), chunked(small));
    t.same(await volume.status(), { freeBytes: 400, totalBytes: 1000 });
    const big = bytes(600, 2);
    await t.rejects(volume.write(md5(big), chunked(big)), { code: 'KEEP_FULL' });
    await volume.trash(md5(small), { deadline: 5 });
    t.equal((await volume.status()).freeBytes, 400, 'trash still takes space');
    await volume.emptyTrash(5);
    t.equal((await volume.status()).freeBytes, 1000, 'emptied trash frees it');
    t.equal((await volume.write(md5(big), chunked(big))).outcome, 'written');
});
t.test('memory volume: a corrupted empty block fails verification', async (t) => {
    const volume = createMemoryVolume({ uuid: 'v' });
    const hash = md5(Buffer.alloc(0));
    await volume.write(hash, chunked(Buffer.alloc(0)));
    volume.corruptForTest(hash);
    const got = await drain((await volume.read(hash)).stream);
    t.match(got.error, { code: 'KEEP_CORRUPT' });
    t.equal(got.data.length, 0);
});
//# sourceMappingURL=memory-volume.test.js.map