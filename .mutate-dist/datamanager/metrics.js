import { Counter, Gauge, Registry } from 'prom-client';
import { CATEGORIES } from './balance.js';
/** The datamanager's Prometheus metrics, in a registry of its own, set from each run's report. */
export class DatamanagerMetrics {
    registry = new Registry();
    runs;
    refusals;
    blocks;
    bytes;
    work;
    dedup;
    collections;
    lastRun;
    lastDuration;
    lastExit;
    constructor() {
        const registers = [this.registry];
        this.runs = new Counter({ name: 'datamanager_runs_total', help: 'Runs by outcome', labelNames: ['outcome'], registers });
        this.refusals = new Counter({ name: 'datamanager_refusals_total', help: 'Refused runs by reason', labelNames: ['reason'], registers });
        this.blocks = new Gauge({ name: 'datamanager_blocks', help: 'Blocks per category at the last run', labelNames: ['category'], registers });
        this.bytes = new Gauge({ name: 'datamanager_bytes', help: 'Bytes per category at the last run', labelNames: ['category'], registers });
        this.work = new Gauge({
            name: 'datamanager_list_items',
            help: 'Pull and trash items at the last run: decided, sent, deferred',
            labelNames: ['list', 'state'],
            registers,
        });
        this.dedup = new Gauge({ name: 'datamanager_dedup_saved_bytes', help: 'Bytes content addressing saves', registers });
        this.collections = new Gauge({ name: 'datamanager_collections', help: 'Collections read at the last run', registers });
        this.lastRun = new Gauge({ name: 'datamanager_last_run_timestamp_seconds', help: 'When the last run finished', registers });
        this.lastDuration = new Gauge({ name: 'datamanager_last_run_duration_seconds', help: 'How long the last run took', registers });
        this.lastExit = new Gauge({ name: 'datamanager_last_run_exit_code', help: 'Exit code of the last run (0 done, 1 refused)', registers });
    }
    observe(report) {
        this.runs.inc({ outcome: report.outcome });
        for (const r of report.refusals)
            this.refusals.inc({ reason: r.code });
        for (const c of CATEGORIES) {
            this.blocks.set({ category: c }, report.categories[c].blocks);
            this.bytes.set({ category: c }, report.categories[c].bytes);
        }
        for (const [list, w] of [['pull', report.pulls], ['trash', report.trashes]]) {
            this.work.set({ list, state: 'decided' }, w.decided);
            this.work.set({ list, state: 'sent' }, w.sent);
            this.work.set({ list, state: 'deferred' }, w.deferred);
        }
        this.dedup.set(report.dedupSavedBytes);
        this.collections.set(report.collections.read);
        this.lastRun.set(Date.parse(report.finishedAt) / 1000);
        this.lastDuration.set(report.durationMs / 1000);
        this.lastExit.set(report.exitCode);
    }
    /** A run that found the lock held. */
    observeLocked() {
        this.runs.inc({ outcome: 'locked' });
    }
}
//# sourceMappingURL=metrics.js.map