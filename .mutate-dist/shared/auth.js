import { timingSafeEqual } from 'node:crypto';
import { KeepError } from './errors.js';
// Tokens come only from this header (ours: no query string, no cookie).
const AUTHORIZATION_RE = /^(?:bearer|oauth2)[ \t]+([^ \t]+)[ \t]*$/i;
/**
 * The token of an `Authorization: Bearer <t>` or `Authorization: OAuth2 <t>`
 * header (scheme case-insensitive); `undefined` for any other header or none.
 */
export function tokenFromAuthorization(header) {
    if (header === undefined)
        return undefined;
    return AUTHORIZATION_RE.exec(header)?.[1];
}
/**
 * Constant-time string equality over UTF-8 bytes. Unequal lengths answer
 * `false` at once (timingSafeEqual would throw), which reveals only the length.
 */
export function safeEqual(a, b) {
    const x = Buffer.from(a, 'utf8');
    const y = Buffer.from(b, 'utf8');
    return x.length === y.length && timingSafeEqual(x, y);
}
/** How a presented token compares with the expected one; an empty token counts as missing. */
export function checkToken(presented, expected) {
    if (presented === undefined || presented.length === 0)
        return 'missing';
    return safeEqual(presented, expected) ? 'ok' : 'wrong';
}
/**
 * Throws unless `presented` equals `expected`: none → `KEEP_UNAUTHORIZED`
 * (401), another → `KEEP_FORBIDDEN` (403). With no token configured the
 * endpoint is off: `KEEP_NOT_FOUND` `disabled` (404), whatever was presented.
 */
export function requireToken(presented, expected) {
    if (expected === undefined)
        throw new KeepError('KEEP_NOT_FOUND', 'disabled');
    const check = checkToken(presented, expected);
    if (check === 'missing')
        throw new KeepError('KEEP_UNAUTHORIZED', 'no token');
    if (check === 'wrong')
        throw new KeepError('KEEP_FORBIDDEN', 'wrong token');
}
//# sourceMappingURL=auth.js.map