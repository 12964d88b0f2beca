import { KeepError } from './errors.js';
import { isHash } from './hash.js';
const DIGITS_RE = /^[0-9]+$/;
const PREFIX_RE = /^[0-9a-f]{0,32}$/;
export function formatIndexLine(e) {
    return `${e.hash}+${e.size} ${e.mtime}\n`;
}
function malformed(message) {
    return new KeepError('KEEP_BAD_REQUEST', `malformed index line: ${message}`);
}
/** Parses one index line (without its `\n`); throws `KEEP_BAD_REQUEST` when malformed. */
export function parseIndexLine(line) {
    const plus = line.indexOf('+');
    const space = line.indexOf(' ', plus + 1);
    if (plus === -1 || space === -1)
        throw malformed('expected <hash>+<size> <mtime>');
    const hash = line.slice(0, plus);
    if (!isHash(hash))
        throw malformed('hash is not 32 lowercase hex digits');
    const sizeText = line.slice(plus + 1, space);
    const size = Number(sizeText);
    if (!DIGITS_RE.test(sizeText) || !Number.isSafeInteger(size))
        throw malformed('size is not a decimal number');
    const mtimeText = line.slice(space + 1);
    if (!DIGITS_RE.test(mtimeText))
        throw malformed('mtime is not decimal nanoseconds');
    return { hash, size, mtime: BigInt(mtimeText) };
}
/** True for an index prefix the server accepts: 0 to 32 lowercase hex digits. */
export function isValidIndexPrefix(p) {
    return PREFIX_RE.test(p);
}
//# sourceMappingURL=index-format.js.map