import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import t from 'tap'
import fc from 'fast-check'
import { createSigner, ttlHex } from '../../shared/signer.js'
import { parseLocator } from '../../shared/locator.js'
import type { KeepErrorCode } from '../../shared/errors.js'

interface SignatureVector {
  key: string
  token: string
  hash: string
  expiry_hex: string
  ttl_seconds: number
  signature: string
}

const vectors = JSON.parse(
  readFileSync(new URL('../../../test/fixtures/test-vectors.json', import.meta.url), 'utf8'),
) as { signatures: SignatureVector[] }

t.test('signature reproduces every vector of test-vectors.json', async (t) => {
  t.ok(vectors.signatures.length >= 3, 'the fixture holds the vectors')
  for (const v of vectors.signatures) {
    const expiry = parseInt(v.expiry_hex, 16)
    const signer = createSigner({
      key: v.key,
      ttlSeconds: v.ttl_seconds,
      maxClockSkewSeconds: 600,
      now: () => (expiry - v.ttl_seconds) * 1000,
    })
    const name = `${v.hash} ttl ${v.ttl_seconds}`
    t.equal(signer.signature(v.hash, v.token, expiry), v.signature, `${name}: signature`)
    const signed = signer.sign(`${v.hash}+3`, v.token, expiry)
    t.equal(signed, `${v.hash}+3+A${v.signature}@${v.expiry_hex}`, `${name}: signed locator`)
    t.doesNotThrow(() => signer.verify(parseLocator(signed), v.token), `${name}: verifies`)
  }
})

t.test('ttlHex is lowercase hex seconds without padding', async (t) => {
  const rows: Array<[number, string]> = [
    [1209600, '127500'],
    [3600, 'e10'],
    [1, '1'],
    [336 * 3600, '127500'],
  ]
  for (const [seconds, hex] of rows) t.equal(ttlHex(seconds), hex, `${seconds} s → ${hex}`)
  for (const bad of [0, -1, 1.5, Number.NaN]) t.throws(() => ttlHex(bad), { code: 'KEEP_CONFIG' }, `${bad} is refused`)
})

const KEY = 'abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz'
const TOKEN = 'v2/zzzzz-gj3su-000000000000000/3kg6k6lzmp9kj5cpkcoxie963cmvjahbt2fod9zru30k1jqdmi'
const HASH = '5eb63bbbe01eeed093cb22bb8f5acdc3'
const TTL = 3600
const SKEW = 600
const NOW_S = 1_700_000_000
const NOW_MS = NOW_S * 1000

const signerAt = (nowMs: number, options: { key?: string; ttlSeconds?: number } = {}) =>
  createSigner({ key: options.key ?? KEY, ttlSeconds: options.ttlSeconds ?? TTL, maxClockSkewSeconds: SKEW, now: () => nowMs })

t.test('sign keeps other hints, replaces old signatures, defaults expiry to now + TTL', async (t) => {
  const signer = signerAt(NOW_MS + 999)
  const exp = (NOW_S + TTL).toString(16)
  const sig = signer.signature(HASH, TOKEN, NOW_S + TTL)
  const old = `A${'0'.repeat(40)}@00000001`
  const rows: Array<[string, string]> = [
    [HASH, `${HASH}+A${sig}@${exp}`],
    [`${HASH}+11`, `${HASH}+11+A${sig}@${exp}`],
    [`${HASH}+11+K@zzzzz+Zfoo`, `${HASH}+11+K@zzzzz+Zfoo+A${sig}@${exp}`],
    [`${HASH}+11+${old}`, `${HASH}+11+A${sig}@${exp}`],
    [`${HASH}+11+${old}+K@zzzzz+Afoo`, `${HASH}+11+K@zzzzz+A${sig}@${exp}`],
  ]
  for (const [input, want] of rows) t.equal(signer.sign(input, TOKEN), want, input)
  t.equal(signer.sign(parseLocator(`${HASH}+11`), TOKEN), `${HASH}+11+A${sig}@${exp}`, 'a parsed Locator signs the same')
  t.equal(signer.sign(`${HASH}+11`, TOKEN, 1).slice(-9), '@00000001', 'the expiry is zero-padded to 8 digits')
  t.throws(() => signer.sign(`${HASH}++11`, TOKEN), { code: 'KEEP_INVALID_LOCATOR' }, 'an invalid locator is refused')
  for (const bad of [-1, 0x100000000, 1.5]) {
    t.throws(() => signer.sign(HASH, TOKEN, bad), { code: 'KEEP_INTERNAL' }, `expiry ${bad} does not fit 8 hex digits`)
  }
})

t.test('verify: each check in the order of §2, with an injected clock', async (t) => {
  const signer = signerAt(NOW_MS)
  const signed = (exp: number, opts: { token?: string; key?: string; ttlSeconds?: number; hash?: string } = {}) =>
    signerAt(NOW_MS, opts).sign(`${opts.hash ?? HASH}+11`, opts.token ?? TOKEN, exp)
  const valid = signed(NOW_S + TTL)
  const sig = valid.slice(valid.indexOf('+A') + 1)
  const cap = NOW_S + TTL + SKEW
  const rows: Array<{ name: string; locator: string; token?: string | undefined; now?: number; code?: KeepErrorCode }> = [
    { name: 'a fresh signature passes', locator: valid },
    { name: 'other hints do not matter', locator: `${HASH}+11+K@zzzzz+${sig}` },
    { name: 'the size is not covered', locator: `${HASH}+${sig}` },
    { name: 'a one-character token is checked, not a crash', locator: valid, token: 'x', code: 'KEEP_INVALID_SIGNATURE' },
    { name: 'no token → 401', locator: valid, token: undefined, code: 'KEEP_UNAUTHORIZED' },
    { name: 'an empty token → 401', locator: valid, token: '', code: 'KEEP_UNAUTHORIZED' },
    { name: 'no token beats no signature', locator: `${HASH}+11`, token: undefined, code: 'KEEP_UNAUTHORIZED' },
    { name: 'no A-hint', locator: `${HASH}+11`, code: 'KEEP_INVALID_SIGNATURE' },
    { name: 'two good A-hints', locator: `${valid}+${sig}`, code: 'KEEP_INVALID_SIGNATURE' },
    { name: 'a malformed A-hint beside a good one', locator: `${valid}+Afoo`, code: 'KEEP_INVALID_SIGNATURE' },
    { name: 'A-hint without @', locator: `${HASH}+11+${sig.replace('@', '')}`, code: 'KEEP_INVALID_SIGNATURE' },
    { name: 'uppercase signature', locator: `${HASH}+11+A${sig.slice(1, 41).toUpperCase()}${sig.slice(41)}`, code: 'KEEP_INVALID_SIGNATURE' },
    { name: '39-digit signature', locator: `${HASH}+11+A${sig.slice(2)}`, code: 'KEEP_INVALID_SIGNATURE' },
    { name: '41-digit signature', locator: `${HASH}+11+A0${sig.slice(1)}`, code: 'KEEP_INVALID_SIGNATURE' },
    { name: '7-digit expiry', locator: valid.slice(0, -1), code: 'KEEP_INVALID_SIGNATURE' },
    { name: '9-digit expiry', locator: `${valid}0`, code: 'KEEP_INVALID_SIGNATURE' },
    { name: 'non-hex expiry', locator: `${valid.slice(0, -1)}g`, code: 'KEEP_INVALID_SIGNATURE' },
    { name: 'a bare A', locator: `${HASH}+11+A`, code: 'KEEP_INVALID_SIGNATURE' },
    { name: 'expiry one second ago → 401', locator: signed(NOW_S - 1), code: 'KEEP_EXPIRED_SIGNATURE' },
    { name: 'expiry equal to now is still valid', locator: signed(NOW_S) },
    { name: 'expiry 1 ms before now → 401', locator: signed(NOW_S), now: NOW_MS + 1, code: 'KEEP_EXPIRED_SIGNATURE' },
    { name: 'expired beats wrong signature', locator: signed(NOW_S - 1, { key: `${KEY}x` }), code: 'KEEP_EXPIRED_SIGNATURE' },
    { name: 'expiry exactly at now + TTL + skew passes', locator: signed(cap) },
    { name: 'expiry 1 s beyond now + TTL + skew → 400', locator: signed(cap + 1), code: 'KEEP_INVALID_SIGNATURE' },
    { name: 'far future expiry (7fffffff) → 400', locator: signed(0x7fffffff), code: 'KEEP_INVALID_SIGNATURE' },
    { name: 'another token', locator: valid, token: `${TOKEN}x`, code: 'KEEP_INVALID_SIGNATURE' },
    { name: 'another key', locator: signed(NOW_S + TTL, { key: `${KEY}x` }), code: 'KEEP_INVALID_SIGNATURE' },
    { name: 'another TTL', locator: signed(NOW_S + TTL, { ttlSeconds: TTL + 1 }), code: 'KEEP_INVALID_SIGNATURE' },
    {
      name: 'a signature moved to another hash',
      locator: `${'0'.repeat(32)}+11+${sig}`,
      code: 'KEEP_INVALID_SIGNATURE',
    },
    { name: 'a tampered expiry', locator: `${valid.slice(0, -1)}${valid.endsWith('0') ? '1' : '0'}`, code: 'KEEP_INVALID_SIGNATURE' },
  ]
  for (const row of rows) {
    const token = 'token' in row ? row.token : TOKEN
    const verifier = row.now === undefined ? signer : signerAt(row.now)
    const run = () => verifier.verify(parseLocator(row.locator), token)
    if (row.code === undefined) t.doesNotThrow(run, row.name)
    else t.throws(run, { code: row.code }, row.name)
  }
})

t.test('createSigner refuses an unusable configuration', async (t) => {
  const rows: Array<[string, Parameters<typeof createSigner>[0]]> = [
    ['empty key', { key: '', ttlSeconds: TTL, maxClockSkewSeconds: SKEW }],
    ['zero TTL', { key: KEY, ttlSeconds: 0, maxClockSkewSeconds: SKEW }],
    ['fractional TTL', { key: KEY, ttlSeconds: 1.5, maxClockSkewSeconds: SKEW }],
    ['negative skew', { key: KEY, ttlSeconds: TTL, maxClockSkewSeconds: -1 }],
    ['NaN skew', { key: KEY, ttlSeconds: TTL, maxClockSkewSeconds: Number.NaN }],
  ]
  for (const [name, options] of rows) t.throws(() => createSigner(options), { code: 'KEEP_CONFIG' }, name)
})

t.test('what sign produces, verify accepts, for any hash, token and hints', async (t) => {
  const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n })
  const hints = fc.array(fc.constantFrom('K@zzzzz', 'Zfoo', 'Rzzzzz-abc'), { maxLength: 3 })
  const signer = signerAt(NOW_MS)
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(hex(32), fc.string({ minLength: 1 }), fc.nat(67108864), hints, (hash, token, size, extra) => {
        const text = [hash, String(size), ...extra].join('+')
        const loc = parseLocator(signer.sign(text, token))
        signer.verify(loc, token)
        assert.equal(loc.signatures.length, 1)
        assert.deepEqual(loc.hints, extra)
      }),
      { numRuns: 300 },
    ),
  )
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(hex(32), fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (hash, token, other) => {
        fc.pre(token !== other)
        const loc = parseLocator(signer.sign(`${hash}+1`, token))
        assert.throws(() => signer.verify(loc, other), { code: 'KEEP_INVALID_SIGNATURE' })
      }),
      { numRuns: 300 },
    ),
  )
})

t.test('verify: near misses — one hex digit of the signature, one character of the token or hash', async (t) => {
  const signer = signerAt(NOW_MS)
  const valid = signer.sign(`${HASH}+11`, TOKEN, NOW_S + TTL)
  const at = valid.indexOf('+A') + 2 // first signature digit
  const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1)
  for (const i of [0, 1, 19, 20, 38, 39]) {
    t.throws(() => signer.verify(parseLocator(flip(valid, at + i)), TOKEN), { code: 'KEEP_INVALID_SIGNATURE' }, `signature digit ${i} flipped → 400`)
  }
  for (const [name, token] of [
    ['the token without its last character', TOKEN.slice(0, -1)],
    ['the token without its first character', TOKEN.slice(1)],
    ['the token with its last character changed', `${TOKEN.slice(0, -1)}j`],
  ] as const) {
    t.throws(() => signer.verify(parseLocator(valid), token), { code: 'KEEP_INVALID_SIGNATURE' }, name)
  }
  t.throws(() => signer.verify(parseLocator(flip(valid, 31)), TOKEN), { code: 'KEEP_INVALID_SIGNATURE' }, 'the last hex digit of the hash changed')
})

t.test('expiry bounds: 0 and 0xffffffff sign, one past either does not; a clock skew of 0 is allowed', async (t) => {
  const signer = signerAt(NOW_MS)
  t.equal(signer.sign(HASH, TOKEN, 0).slice(-9), '@00000000', 'expiry 0')
  t.equal(signer.sign(HASH, TOKEN, 0xffffffff).slice(-9), '@ffffffff', 'expiry 0xffffffff')
  t.equal(signer.signature(HASH, TOKEN, 0xffffffff).length, 40)
  t.throws(() => signer.signature(HASH, TOKEN, -1), { code: 'KEEP_INTERNAL' })
  t.throws(() => signer.signature(HASH, TOKEN, 0x100000000), { code: 'KEEP_INTERNAL' })
  const strict = createSigner({ key: KEY, ttlSeconds: TTL, maxClockSkewSeconds: 0, now: () => NOW_MS })
  t.doesNotThrow(() => strict.verify(parseLocator(strict.sign(`${HASH}+11`, TOKEN, NOW_S + TTL)), TOKEN), 'skew 0: exactly now + TTL passes')
  t.throws(() => strict.verify(parseLocator(strict.sign(`${HASH}+11`, TOKEN, NOW_S + TTL + 1)), TOKEN), { code: 'KEEP_INVALID_SIGNATURE' }, 'skew 0: one second more → 400')
})
