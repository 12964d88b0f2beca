import { hash } from 'node:crypto';
/** MD5 of zero bytes: the hash of the empty block, `d41d8cd98f00b204e9800998ecf8427e+0`. */
export const EMPTY_BLOCK_HASH = 'd41d8cd98f00b204e9800998ecf8427e';
const HASH_RE = /^[0-9a-f]{32}$/;
/**
 * Lowercase hex MD5 of `data` (a string is hashed as UTF-8). One-shot
 * `crypto.hash` is about twice as fast as `createHash()` for short inputs,
 * which matters to rendezvous ordering (one call per server per block).
 */
export function md5hex(data) {
    return hash('md5', data, 'hex');
}
/** True when `s` is exactly 32 lowercase hex digits (a block hash). */
export function isHash(s) {
    return s.length === 32 && HASH_RE.test(s);
}
//# sourceMappingURL=hash.js.map