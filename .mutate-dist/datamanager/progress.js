import cliProgress from 'cli-progress';
export const noProgress = { phase() { }, update() { }, stop() { } };
/** A cli-progress bar on stderr; only worth it when `process.stderr.isTTY`. */
export function createTtyProgress(stream = process.stderr) {
    const bar = new cliProgress.SingleBar({
        stream,
        format: 'datamanager {phase} |{bar}| {percentage}% {detail}',
        hideCursor: true,
        clearOnComplete: true,
        fps: 5,
    }, cliProgress.Presets.shades_classic);
    let running = false;
    let phase = '';
    return {
        phase(name, total) {
            phase = name;
            if (running)
                bar.setTotal(Math.max(1, total));
            else
                bar.start(Math.max(1, total), 0, { phase, detail: '' });
            bar.update(0, { phase, detail: '' });
            running = true;
        },
        update(value, detail) {
            if (running)
                bar.update(value, { phase, detail });
        },
        stop() {
            if (running)
                bar.stop();
            running = false;
        },
    };
}
/** Selects the bar only for a terminal. */
export function progressFor(stream = process.stderr) {
    return stream.isTTY ? createTtyProgress(stream) : noProgress;
}
//# sourceMappingURL=progress.js.map