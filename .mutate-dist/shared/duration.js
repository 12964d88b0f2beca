import { KeepError } from './errors.js';
/**
 * Durations and sizes as operators write them in the config file and on the
 * command line. Durations use Go's `time.ParseDuration` grammar (`336h`,
 * `1h30m`, `1.5h`, `500ms`, `250us`, `0`) or a plain number of seconds (a
 * YAML number or a numeric string); sizes take decimal (`10MB`) or binary
 * (`64MiB`) units, or a plain number of bytes. Negative values are refused:
 * nothing in this product waits for a negative time or stores a negative size.
 */
const NS_PER_MS = 1000000n;
const MAX_NS = (1n << 63n) - 1n; // Go's time.Duration range
const DURATION_UNITS_NS = {
    ns: 1n,
    us: 1000n,
    'µs': 1000n, // U+00B5 micro sign
    'μs': 1000n, // U+03BC Greek mu, also accepted by Go
    ms: NS_PER_MS,
    s: 1000n * NS_PER_MS,
    m: 60000n * NS_PER_MS,
    h: 3600000n * NS_PER_MS,
};
const SIZE_UNITS = {
    B: 1n,
    KB: 1000n,
    MB: 1000n ** 2n,
    GB: 1000n ** 3n,
    TB: 1000n ** 4n,
    PB: 1000n ** 5n,
    KiB: 1024n,
    MiB: 1024n ** 2n,
    GiB: 1024n ** 3n,
    TiB: 1024n ** 4n,
    PiB: 1024n ** 5n,
};
const PLAIN_NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)$/;
const DURATION_TERM = /(\d*)(?:\.(\d*))?([^\d.]+)/y;
const SIZE = /^(\d+)(?:\.(\d+))?\s*([A-Za-z]*)$/;
function fail(reason, key) {
    throw new KeepError('KEEP_CONFIG', key === undefined ? reason : `config: ${key}: ${reason}`);
}
function secondsToMs(seconds, original, key) {
    if (!Number.isFinite(seconds))
        fail(`invalid duration ${JSON.stringify(String(original))}`, key);
    if (seconds < 0)
        fail(`must not be negative (got ${JSON.stringify(String(original))})`, key);
    return seconds * 1000;
}
/** Exact nanoseconds of `int.frac` × unit, truncating below 1 ns as Go does. */
function termNs(int, frac, unitNs) {
    const whole = BigInt(int === '' ? '0' : int) * unitNs;
    if (frac === '')
        return whole;
    return whole + (BigInt(frac) * unitNs) / 10n ** BigInt(frac.length);
}
/**
 * Parses a duration into milliseconds (fractional below 1 ms, e.g. `500us` →
 * 0.5). `key` names the config key in the error (`config: <key>: <reason>`);
 * without it the message is the bare reason.
 * @throws KeepError KEEP_CONFIG on anything else.
 */
export function parseDuration(value, key) {
    if (typeof value === 'number')
        return secondsToMs(value, value, key);
    if (typeof value !== 'string')
        fail('must be a duration like 10m or a number of seconds', key);
    const quoted = JSON.stringify(value);
    const text = value.trim();
    if (PLAIN_NUMBER.test(text))
        return secondsToMs(Number(text), value, key);
    let rest = text;
    let negative = false;
    if (rest.startsWith('-') || rest.startsWith('+')) {
        negative = rest.startsWith('-');
        rest = rest.slice(1);
    }
    if (rest === '0')
        return 0;
    if (rest === '')
        fail(`invalid duration ${quoted}`, key);
    let ns = 0n;
    let at = 0;
    while (at < rest.length) {
        DURATION_TERM.lastIndex = at;
        const match = DURATION_TERM.exec(rest);
        if (match === null) {
            const missingUnit = PLAIN_NUMBER.test(rest.slice(at));
            fail(missingUnit ? `missing unit in duration ${quoted}` : `invalid duration ${quoted}`, key);
        }
        at = DURATION_TERM.lastIndex;
        const [, int = '', frac = '', unit = ''] = match;
        if (int === '' && frac === '')
            fail(`invalid duration ${quoted}`, key);
        const unitNs = DURATION_UNITS_NS[unit];
        if (unitNs === undefined)
            fail(`unknown unit ${JSON.stringify(unit)} in duration ${quoted}`, key);
        ns += termNs(int, frac, unitNs);
        if (ns > MAX_NS)
            fail(`invalid duration ${quoted} (too long)`, key);
    }
    if (negative && ns !== 0n)
        fail(`must not be negative (got ${quoted})`, key);
    return Number(ns / NS_PER_MS) + Number(ns % NS_PER_MS) / 1e6;
}
/**
 * Parses a size into bytes: `64MiB`, `1GiB`, `10MB`, `512KiB`, `1.5GiB`,
 * `1024` (bytes), `0`. A fraction must come out as whole bytes.
 * @throws KeepError KEEP_CONFIG on anything else (`key` as in {@link parseDuration}).
 */
export function parseSize(value, key) {
    const quoted = JSON.stringify(String(value));
    if (typeof value === 'number') {
        if (!Number.isSafeInteger(value) || value < 0)
            fail(`must be a whole number of bytes ≥ 0 (got ${value})`, key);
        return value;
    }
    if (typeof value !== 'string')
        fail('must be a size like 64MiB or a number of bytes', key);
    const match = SIZE.exec(value.trim());
    if (match === null)
        fail(`invalid size ${quoted} (use e.g. 64MiB, 10MB or a number of bytes)`, key);
    const [, int = '0', frac = '', unit = ''] = match;
    const multiplier = unit === '' ? 1n : SIZE_UNITS[unit];
    if (multiplier === undefined) {
        fail(`unknown unit ${JSON.stringify(unit)} in size ${quoted} (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`, key);
    }
    const scale = 10n ** BigInt(frac.length);
    const scaled = BigInt(int + frac) * multiplier;
    if (scaled % scale !== 0n)
        fail(`size ${quoted} is not a whole number of bytes`, key);
    const bytes = scaled / scale;
    if (bytes > BigInt(Number.MAX_SAFE_INTEGER))
        fail(`size ${quoted} is too large`, key);
    return Number(bytes);
}
const FORMAT_UNITS = [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
    ['ms', 1],
];
/**
 * Formats milliseconds for logs in the grammar {@link parseDuration} reads,
 * without zero terms: 336h, 1h30m, 2s, 500ms, 1m30s500ms, 250us, 0s.
 */
export function formatDuration(ms) {
    if (!Number.isFinite(ms))
        return String(ms);
    if (ms < 0)
        return `-${formatDuration(-ms)}`;
    if (ms === 0)
        return '0s';
    let whole = Math.floor(ms);
    let subNs = Math.round((ms - whole) * 1e6);
    if (subNs === 1e6) {
        whole += 1;
        subNs = 0;
    }
    let text = '';
    for (const [unit, size] of FORMAT_UNITS) {
        const count = Math.floor(whole / size);
        if (count > 0)
            text += `${count}${unit}`;
        whole -= count * size;
    }
    if (subNs >= 1000)
        text += `${Math.floor(subNs / 1000)}us`;
    if (subNs % 1000 > 0)
        text += `${subNs % 1000}ns`;
    return text;
}
//# sourceMappingURL=duration.js.map