import { appendFileSync } from 'node:fs';
/**
 * Sizes and figures of the reliability suite (test/reliability/). `npm test`
 * runs each part with its quick count; `npm run soak` sets KEEP_SOAK=1 and the
 * long counts, each overridable by a flag that becomes KEEP_SOAK_<NAME>
 * (`npm run soak -- --kills 800` → KEEP_SOAK_KILLS=800).
 */
export function isSoak() {
    return process.env.KEEP_SOAK === '1';
}
/** How many of something to do: KEEP_SOAK_<NAME> if set, else `soak` under soak, else `quick`. */
export function scale(name, quick, soak) {
    const override = process.env[`KEEP_SOAK_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`];
    if (override !== undefined && /^\d+$/.test(override))
        return Number(override);
    return isSoak() ? soak : quick;
}
/**
 * Reports a measured figure: a TAP comment (`# figure <name>: k=v …`), and,
 * when KEEP_FIGURES names a file (the soak runner sets it), one JSON line
 * appended there for RELIABILITY.md.
 */
export function figure(t, name, values) {
    const text = Object.entries(values)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' ');
    t.comment(`figure ${name}: ${text}`);
    const file = process.env.KEEP_FIGURES;
    if (file)
        appendFileSync(file, `${JSON.stringify({ name, soak: isSoak(), at: new Date().toISOString(), ...values })}\n`);
}
/** Prints progress on stderr under soak (long runs show they are alive), nothing in npm test. */
export function progress(name, done, total) {
    if (!isSoak())
        return;
    const step = Math.max(1, Math.floor(total / 20));
    if (done === total || done % step === 0)
        process.stderr.write(`  ${name}: ${done}/${total}\n`);
}
//# sourceMappingURL=soak.js.map