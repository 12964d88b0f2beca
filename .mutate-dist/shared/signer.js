import { createHmac, createSecretKey, timingSafeEqual } from 'node:crypto';
import { KeepError } from './errors.js';
import { formatLocator, parseLocator } from './locator.js';
const A_HINT_LENGTH = 50; // 'A' + 40 hex + '@' + 8 hex
const A_HINT_RE = /^A[0-9a-f]{40}@[0-9a-f]{8}$/;
const MAX_EXPIRY = 0xffffffff;
/** `blobSigningTTL` as signed: lowercase hex seconds, no padding (1209600 → `127500`). */
export function ttlHex(ttlSeconds) {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) {
        throw new KeepError('KEEP_CONFIG', 'blobSigningTTL must be a whole number of seconds ≥ 1');
    }
    return ttlSeconds.toString(16);
}
function expiryHex(expiry) {
    if (!Number.isInteger(expiry) || expiry < 0 || expiry > MAX_EXPIRY) {
        throw new KeepError('KEEP_INTERNAL', 'signature expiry must be unix seconds in 0..0xffffffff');
    }
    return expiry.toString(16).padStart(8, '0');
}
function invalidSignature(message = 'invalid signature') {
    return new KeepError('KEEP_INVALID_SIGNATURE', message);
}
export function createSigner(options) {
    const { ttlSeconds, maxClockSkewSeconds } = options;
    if (options.key.length === 0)
        throw new KeepError('KEEP_CONFIG', 'blobSigningKey must not be empty');
    if (!(maxClockSkewSeconds >= 0) || !Number.isFinite(maxClockSkewSeconds)) {
        throw new KeepError('KEEP_CONFIG', 'maxClockSkew must be a finite number of seconds ≥ 0');
    }
    const ttl = ttlHex(ttlSeconds);
    const key = createSecretKey(Buffer.from(options.key, 'utf8'));
    const now = options.now ?? Date.now;
    const capMs = (ttlSeconds + maxClockSkewSeconds) * 1000;
    const digest = (hash, token, expHex) => createHmac('sha1', key).update(`${hash}@${token}@${expHex}@${ttl}`).digest();
    return {
        signature(hash, token, expiry) {
            return digest(hash, token, expiryHex(expiry)).toString('hex');
        },
        sign(locator, token, expiry) {
            const loc = typeof locator === 'string' ? parseLocator(locator) : locator;
            const expHex = expiryHex(expiry ?? Math.floor(now() / 1000) + ttlSeconds);
            const sig = digest(loc.hash, token, expHex).toString('hex');
            return `${formatLocator({ ...loc, signatures: [] })}+A${sig}@${expHex}`;
        },
        verify(loc, token) {
            if (token === undefined || token.length === 0) {
                throw new KeepError('KEEP_UNAUTHORIZED', 'no token');
            }
            const hint = loc.signatures.length === 1 ? loc.signatures[0] : '';
            if (hint.length !== A_HINT_LENGTH || !A_HINT_RE.test(hint))
                throw invalidSignature();
            const expHex = hint.slice(42);
            const expiryMs = parseInt(expHex, 16) * 1000;
            const nowMs = now();
            if (expiryMs < nowMs)
                throw new KeepError('KEEP_EXPIRED_SIGNATURE', 'expired signature');
            if (expiryMs > nowMs + capMs)
                throw invalidSignature('signature expiry is too far in the future');
            const expected = digest(loc.hash, token, expHex);
            const given = Buffer.from(hint.slice(1, 41), 'hex');
            if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
                throw invalidSignature();
            }
        },
    };
}
//# sourceMappingURL=signer.js.map