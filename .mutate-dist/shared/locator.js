import { KeepError } from './errors.js';
import { isHash } from './hash.js';
const SIZE_RE = /^[0-9]+$/;
const CODE_0 = 48;
const CODE_9 = 57;
const CODE_A = 65;
function invalid(message) {
    return new KeepError('KEEP_INVALID_LOCATOR', `invalid locator: ${message}`);
}
/** The one place a hint's characters are checked: visible ASCII, not `+`. */
function checkHint(hint) {
    for (let i = 0; i < hint.length; i++) {
        const c = hint.charCodeAt(i);
        if (c <= 0x20 || c >= 0x7f)
            throw invalid('hint with a space, control or non-ASCII character');
    }
}
/**
 * Parses a locator, throwing `KEEP_INVALID_LOCATOR` on every form §1 rules
 * out: a hash that is not 32 lowercase hex digits, an empty part (`++`,
 * leading or trailing `+`), a size that is not plain decimal digits or not a
 * safe integer, a later hint starting with a digit. Hints are also limited
 * to visible ASCII (ours: they end up in logs and space-separated manifests).
 */
export function parseLocator(text) {
    let end = text.indexOf('+');
    if (end === -1)
        end = text.length;
    const hash = text.slice(0, end);
    if (!isHash(hash))
        throw invalid('hash is not 32 lowercase hex digits');
    const loc = { hash, size: undefined, hints: [], signatures: [] };
    let first = true;
    while (end < text.length) {
        const start = end + 1;
        end = text.indexOf('+', start);
        if (end === -1)
            end = text.length;
        if (end === start)
            throw invalid('empty hint');
        const part = text.slice(start, end);
        const c = part.charCodeAt(0);
        if (c >= CODE_0 && c <= CODE_9) {
            if (!first)
                throw invalid('only the first hint may start with a digit');
            loc.size = parseSize(part);
        }
        else {
            checkHint(part);
            if (c === CODE_A)
                loc.signatures.push(part);
            else
                loc.hints.push(part);
        }
        first = false;
    }
    return loc;
}
function parseSize(part) {
    if (!SIZE_RE.test(part))
        throw invalid('size is not a decimal number');
    const size = Number(part);
    if (!Number.isSafeInteger(size))
        throw invalid('size is beyond 2^53');
    return size;
}
/** `hash[+size][+hints…][+signatures…]`: the inverse of {@link parseLocator}, up to hint order. */
export function formatLocator(loc) {
    let text = loc.size === undefined ? loc.hash : `${loc.hash}+${loc.size}`;
    for (const hint of loc.hints)
        text += `+${hint}`;
    for (const sig of loc.signatures)
        text += `+${sig}`;
    return text;
}
/** `hash+size`, the form a PUT answers and an index lists. */
export function bareLocator(hash, size) {
    return `${hash}+${size}`;
}
//# sourceMappingURL=locator.js.map