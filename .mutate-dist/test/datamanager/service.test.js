import t from 'tap';
import { call, captureLogger, MANAGEMENT_TOKEN } from '../helpers/cluster.js';
import { startDmCluster } from '../helpers/datamanager-cluster.js';
import { createFileLock } from '../../datamanager/lock.js';
import { startService } from '../../datamanager/service.js';
t.test('service: with zero collections every period is refused, logged once, and the service keeps going', async (t) => {
    const dm = await startDmCluster(t, { datamanager: { listen: '127.0.0.1:0', period: '1m' } });
    const logs = [];
    const stop = new AbortController();
    const results = [];
    const waits = [];
    const service = await startService({
        config: dm.config,
        client: dm.client,
        lock: createFileLock(dm.stateDir),
        logger: captureLogger(logs),
        now: () => dm.clock.now,
        signal: stop.signal,
        onRun: (r) => results.push(r),
        async wait(ms) {
            waits.push(ms);
            if (waits.length === 3)
                stop.abort();
        },
    });
    t.ok(service.address, 'metrics listening');
    const url = `http://127.0.0.1:${service.address.port}`;
    const unauthorized = await call(url, 'GET', '/metrics');
    const forbidden = await call(url, 'GET', '/metrics', { token: 'wrong' });
    const health = await call(url, 'GET', '/_health/ping', { token: MANAGEMENT_TOKEN });
    const unknown = await call(url, 'GET', '/nope', { token: MANAGEMENT_TOKEN });
    await service.done;
    t.same(results.map((r) => r?.exitCode), [1, 1, 1], 'three periods, each refused');
    t.same(waits, [60_000, 60_000, 60_000], 'waits one period between runs');
    const refusals = logs.filter((l) => /^refusing to pull or trash: no collection was read/.test(l.msg ?? ''));
    t.equal(refusals.length, 3, 'one refusal line per period');
    t.same([unauthorized.status, forbidden.status, health.status, unknown.status], [401, 403, 200, 400]);
    t.same(JSON.parse(health.text), { health: 'OK' });
    const metrics = await service.metrics.registry.metrics();
    t.match(metrics, /datamanager_runs_total\{outcome="refused"\} 3/);
    t.match(metrics, /datamanager_refusals_total\{reason="no-collections"\} 3/);
    t.same(dm.client.puts('/pull'), [], 'never a pull list');
    t.same(dm.client.puts('/trash', true), [], 'never a non-empty trash list');
});
t.test('service: /metrics serves the last run, guarded by the management token', async (t) => {
    const dm = await startDmCluster(t, { datamanager: { listen: '127.0.0.1:0' } });
    const stop = new AbortController();
    let ran;
    const firstRun = new Promise((resolve) => (ran = resolve));
    const service = await startService({
        config: dm.config,
        client: dm.client,
        lock: createFileLock(dm.stateDir),
        logger: captureLogger([]),
        signal: stop.signal,
        onRun: () => ran(),
        wait: (_ms, signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
    });
    await firstRun;
    const url = `http://127.0.0.1:${service.address.port}`;
    const res = await call(url, 'GET', '/metrics', { token: MANAGEMENT_TOKEN });
    t.equal(res.status, 200);
    t.match(res.text, /datamanager_last_run_exit_code 1/);
    t.match(res.text, /datamanager_blocks\{category="ok"\} 0/);
    stop.abort();
    await service.done;
    t.pass('stops when aborted during the wait');
});
t.test('service: a held lock is logged and retried next period', async (t) => {
    const dm = await startDmCluster(t);
    const held = await createFileLock(dm.stateDir).tryAcquire();
    t.teardown(() => held?.release());
    const stop = new AbortController();
    const results = [];
    const service = await startService({
        config: dm.config,
        client: dm.client,
        lock: createFileLock(dm.stateDir),
        logger: captureLogger([]),
        signal: stop.signal,
        onRun: (r) => results.push(r?.exitCode),
        async wait() {
            if (results.length === 2)
                stop.abort();
        },
    });
    await service.done;
    t.same(results, [3, 3]);
    t.equal(service.address, undefined, 'no listen, no server');
});
//# sourceMappingURL=service.test.js.map