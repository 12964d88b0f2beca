import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
const TRAILER = 16;
/**
 * Distinct blocks of `size` bytes without holding them all: every block is one
 * shared random prefix plus a 16-byte trailer (a run-unique random half and a
 * counter). MD5 is computed once over the prefix; each block's hash is a copy
 * of that state updated with its trailer, so a 64 MiB block costs the load
 * generator microseconds, not 80 ms of CPU that the servers would then lack.
 */
export function createBlockSource(size) {
    if (size < TRAILER)
        throw new RangeError(`block size must be ≥ ${TRAILER}`);
    const prefix = randomBytes(size - TRAILER);
    const prefixHash = createHash('md5').update(prefix);
    const salt = randomBytes(8);
    let counter = 0n;
    const small = size <= 1024 * 1024;
    return {
        size,
        next() {
            const trailer = Buffer.allocUnsafe(TRAILER);
            salt.copy(trailer, 0);
            trailer.writeBigUInt64BE(counter++, 8);
            const hash = prefixHash.copy().update(trailer).digest('hex');
            // Small blocks go out as one buffer: one write per request, as a real client does.
            const parts = small ? [Buffer.concat([prefix, trailer])] : [prefix, trailer];
            return { hash, size, parts };
        },
    };
}
/** The body of a block as undici takes it: the one buffer, or a stream of the parts. */
export function bodyOf(block) {
    if (block.parts.length === 1)
        return block.parts[0];
    return Readable.from(block.parts, { objectMode: false });
}
export const KiB = 1024;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
//# sourceMappingURL=blocks.js.map