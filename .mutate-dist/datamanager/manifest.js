import { EMPTY_BLOCK_HASH } from '../shared/hash.js';
// hash, size, then hints that do not start with a digit (PROTOCOL §1); a manifest locator always has a size.
const LOCATOR_RE = /^[0-9a-f]{32}\+[0-9]{1,17}(?:\+[^+\s0-9][^+\s]*)*$/;
const SEGMENT_RE = /^[0-9]+:[0-9]+:\S+$/;
/**
 * Collects every locator token of a manifest (PROTOCOL §7): each line is a
 * stream name, one or more locators, then one or more `pos:len:name`
 * segments. The empty block is not a reference. Scans the text in place,
 * one token at a time, without splitting it into arrays of lines or words.
 * @returns the references, or a one-line reason (with the manifest line) when malformed.
 */
export function parseManifest(text) {
    const refs = { hashes: [], sizes: [] };
    let lineNo = 0;
    let pos = 0;
    while (pos < text.length) {
        lineNo++;
        let end = text.indexOf('\n', pos);
        if (end === -1)
            end = text.length;
        const problem = parseLine(text, pos, end, refs);
        if (problem !== undefined)
            return `manifest line ${lineNo}: ${problem}`;
        pos = end + 1;
    }
    return refs;
}
function parseLine(text, start, end, refs) {
    if (start === end)
        return 'empty line';
    let token = 0;
    let locators = 0;
    let segments = 0;
    let pos = start;
    while (pos < end) {
        let stop = text.indexOf(' ', pos);
        if (stop === -1 || stop > end)
            stop = end;
        if (stop === pos)
            return 'two spaces in a row';
        const word = text.slice(pos, stop);
        if (token === 0) {
            if (word[0] !== '.')
                return `stream name ${clip(word)} does not start with "."`;
        }
        else if (segments === 0 && LOCATOR_RE.test(word)) {
            locators++;
            const hash = word.slice(0, 32);
            const plus = word.indexOf('+', 33);
            const size = Number(word.slice(33, plus === -1 ? word.length : plus));
            if (hash !== EMPTY_BLOCK_HASH || size !== 0) {
                refs.hashes.push(hash);
                refs.sizes.push(size);
            }
        }
        else if (locators > 0 && SEGMENT_RE.test(word)) {
            segments++;
        }
        else {
            return `unexpected token ${clip(word)}`;
        }
        token++;
        pos = stop + 1;
    }
    if (locators === 0)
        return 'no locator';
    if (segments === 0)
        return 'no file segment';
    return undefined;
}
function clip(word) {
    return JSON.stringify(word.length > 40 ? `${word.slice(0, 40)}…` : word);
}
//# sourceMappingURL=manifest.js.map