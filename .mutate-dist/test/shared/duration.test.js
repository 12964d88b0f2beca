import t from 'tap';
import { formatDuration, parseDuration, parseSize } from '../../shared/duration.js';
import { isKeepError } from '../../shared/errors.js';
/** tap matches a string `message` as a substring; the message is the contract here, so match the whole line. */
function exactly(code, message) {
    return { code, message: new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) };
}
const durations = [
    ['336h', 336 * 3_600_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['10m', 600_000],
    ['2s', 2000],
    ['1.1s', 1100],
    ['.5s', 500],
    ['5.s', 5000],
    ['500ms', 500],
    ['1m30s500ms', 90_500],
    ['2h45m30.5s', 9_930_500],
    ['250us', 0.25],
    ['250µs', 0.25],
    ['250μs', 0.25],
    ['1ms500us', 1.5],
    ['1500ns', 0.0015],
    ['+5s', 5000],
    ['-0', 0],
    ['0', 0],
    ['0s', 0],
    [' 10m ', 600_000],
    ['90', 90_000],
    ['0.25', 250],
    [0, 0],
    [3600, 3_600_000],
    [1.5, 1500],
];
t.test('parseDuration reads Go durations and numbers of seconds as milliseconds', async (t) => {
    for (const [input, ms] of durations)
        t.equal(parseDuration(input), ms, `${JSON.stringify(input)} → ${ms} ms`);
});
const badDurations = [
    ['', 'invalid duration ""'],
    ['h', 'invalid duration "h"'],
    ['.', 'invalid duration "."'],
    ['1..5s', 'invalid duration "1..5s"'],
    ['10m5', 'missing unit in duration "10m5"'],
    ['1x', 'unknown unit "x" in duration "1x"'],
    ['1d', 'unknown unit "d" in duration "1d"'],
    ['1h 30m', 'unknown unit "h " in duration "1h 30m"'],
    ['-1s', 'must not be negative (got "-1s")'],
    [-1, 'must not be negative (got "-1")'],
    [Number.NaN, 'invalid duration "NaN"'],
    [Number.POSITIVE_INFINITY, 'invalid duration "Infinity"'],
    ['2562048h', 'invalid duration "2562048h" (too long)'],
];
t.test('parseDuration refuses anything else with KEEP_CONFIG and a one-line reason', async (t) => {
    for (const [input, message] of badDurations) {
        t.throws(() => parseDuration(input), exactly('KEEP_CONFIG', message), String(input));
    }
});
t.test('parseDuration names the key when given one', async (t) => {
    t.throws(() => parseDuration('soon', 'cluster.maxClockSkew'), exactly('KEEP_CONFIG', 'config: cluster.maxClockSkew: invalid duration "soon"'));
    try {
        parseDuration('x');
        t.fail('no error');
    }
    catch (err) {
        t.ok(isKeepError(err, 'KEEP_CONFIG'), 'the error is a KeepError');
    }
});
const sizes = [
    ['64MiB', 64 * 1024 ** 2],
    ['1GiB', 1024 ** 3],
    ['512KiB', 512 * 1024],
    ['2TiB', 2 * 1024 ** 4],
    ['1PiB', 1024 ** 5],
    ['10MB', 10_000_000],
    ['1KB', 1000],
    ['3GB', 3e9],
    ['1TB', 1e12],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['1.5KB', 1500],
    ['64 MiB', 64 * 1024 ** 2],
    ['100B', 100],
    ['1024', 1024],
    ['0', 0],
    [0, 0],
    [4096, 4096],
];
t.test('parseSize reads decimal and binary units as bytes', async (t) => {
    for (const [input, bytes] of sizes)
        t.equal(parseSize(input), bytes, `${JSON.stringify(input)} → ${bytes}`);
});
const badSizes = [
    ['', 'invalid size "" (use e.g. 64MiB, 10MB or a number of bytes)'],
    ['MiB', 'invalid size "MiB" (use e.g. 64MiB, 10MB or a number of bytes)'],
    ['-1MiB', 'invalid size "-1MiB" (use e.g. 64MiB, 10MB or a number of bytes)'],
    ['1k', 'unknown unit "k" in size "1k" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)'],
    ['1mib', 'unknown unit "mib" in size "1mib" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)'],
    ['0.1B', 'size "0.1B" is not a whole number of bytes'],
    ['1.0001KB', 'size "1.0001KB" is not a whole number of bytes'],
    ['9000PiB', 'size "9000PiB" is too large'],
    [-1, 'must be a whole number of bytes ≥ 0 (got -1)'],
    [1.5, 'must be a whole number of bytes ≥ 0 (got 1.5)'],
];
t.test('parseSize refuses anything else with KEEP_CONFIG', async (t) => {
    for (const [input, message] of badSizes) {
        t.throws(() => parseSize(input), exactly('KEEP_CONFIG', message), JSON.stringify(input));
    }
    t.throws(() => parseSize('lots', 'keepstores[0].minFreeSpace'), exactly('KEEP_CONFIG', 'config: keepstores[0].minFreeSpace: invalid size "lots" (use e.g. 64MiB, 10MB or a number of bytes)'));
});
const formats = [
    [336 * 3_600_000, '336h'],
    [5_400_000, '1h30m'],
    [600_000, '10m'],
    [2000, '2s'],
    [500, '500ms'],
    [90_500, '1m30s500ms'],
    [0.25, '250us'],
    [1.5, '1ms500us'],
    [0.0015, '1us500ns'],
    [0, '0s'],
    [-2000, '-2s'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
];
t.test('formatDuration writes compact durations that parseDuration reads back', async (t) => {
    for (const [ms, text] of formats) {
        t.equal(formatDuration(ms), text, `${ms} ms → ${text}`);
        if (ms >= 0 && Number.isFinite(ms))
            t.equal(parseDuration(text), ms, `${text} reads back as ${ms} ms`);
    }
});
//# sourceMappingURL=duration.test.js.map