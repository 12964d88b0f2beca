import { Registry, Counter, Histogram, Gauge } from 'prom-client';
/**
 * One registry per keepstore (tests run several in one process). Gauges that
 * describe state (free bytes, errors, worklist counters) are read at scrape time.
 */
export class KeepstoreMetrics {
    registry = new Registry();
    requests;
    latency;
    bytesIn;
    bytesOut;
    pullBytes;
    pullFailures;
    trashEmptied;
    constructor(sources) {
        const registers = [this.registry];
        this.requests = new Counter({ name: 'keepstore_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'method', 'status'], registers });
        this.latency = new Histogram({
            name: 'keepstore_request_duration_seconds',
            help: 'HTTP request latency',
            labelNames: ['route', 'method'],
            buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
            registers,
        });
        this.bytesIn = new Counter({ name: 'keepstore_bytes_in_total', help: 'Block bytes received', registers });
        this.bytesOut = new Counter({ name: 'keepstore_bytes_out_total', help: 'Block and index bytes sent', registers });
        this.pullBytes = new Counter({ name: 'keepstore_pull_bytes_total', help: 'Bytes pulled from other keepstores', registers });
        this.pullFailures = new Counter({ name: 'keepstore_pull_failures_total', help: 'Failed pull attempts by reason', labelNames: ['reason'], registers });
        this.trashEmptied = new Counter({ name: 'keepstore_trash_emptied_total', help: 'Trashed blocks deleted for good', registers });
        new Gauge({
            name: 'keepstore_volume_free_bytes',
            help: 'Free bytes per volume',
            labelNames: ['volume'],
            registers,
            collect() {
                for (const m of sources.mounts())
                    this.set({ volume: m.uuid }, m.space().freeBytes);
            },
        });
        new Gauge({
            name: 'keepstore_volume_errors',
            help: 'I/O and corruption errors per volume since start',
            labelNames: ['volume'],
            registers,
            collect() {
                for (const m of sources.mounts())
                    this.set({ volume: m.uuid }, m.errors);
            },
        });
        new Gauge({
            name: 'keepstore_worklist_items',
            help: 'Worklist items of the current list by state',
            labelNames: ['list', 'state'],
            registers,
            collect() {
                for (const [list, c] of Object.entries(sources.worklists?.() ?? {})) {
                    for (const state of ['queued', 'in_progress', 'done', 'failed', 'skipped'])
                        this.set({ list, state }, c[state]);
                }
            },
        });
    }
    observeRequest(route, method, status, seconds, bytesIn, bytesOut) {
        this.requests.inc({ route, method, status: String(status) });
        this.latency.observe({ route, method }, seconds);
        if (bytesIn)
            this.bytesIn.inc(bytesIn);
        if (bytesOut)
            this.bytesOut.inc(bytesOut);
    }
}
//# sourceMappingURL=metrics.js.map