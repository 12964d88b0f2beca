import t from 'tap'
import { checkToken, requireToken, safeEqual, tokenFromAuthorization, type AdminCheck } from '../../shared/auth.js'
import type { KeepErrorCode } from '../../shared/errors.js'

t.test('tokenFromAuthorization reads Bearer and OAuth2, nothing else', async (t) => {
  const rows: Array<[string | undefined, string | undefined]> = [
    ['Bearer abc123', 'abc123'],
    ['bearer abc123', 'abc123'],
    ['BEARER abc123', 'abc123'],
    ['OAuth2 abc123', 'abc123'],
    ['oauth2 abc123', 'abc123'],
    ['Bearer v2/zzzzz-gj3su-000000000000000/secret', 'v2/zzzzz-gj3su-000000000000000/secret'],
    ['Bearer  abc123', 'abc123'],
    ['Bearer\tabc123 ', 'abc123'],
    [undefined, undefined],
    ['', undefined],
    ['abc123', undefined],
    ['Bearer', undefined],
    ['Bearer ', undefined],
    ['Bearerabc123', undefined],
    ['Bearer abc 123', undefined],
    ['Basic YWxhZGRpbjpvcGVuc2VzYW1l', undefined],
    ['OAuth abc123', undefined],
    ['Token abc123', undefined],
    [' Bearer abc123', undefined],
  ]
  for (const [header, token] of rows) t.equal(tokenFromAuthorization(header), token, `${JSON.stringify(header)} → ${token}`)
})

t.test('safeEqual compares whole strings and never throws on lengths', async (t) => {
  const rows: Array<[string, string, boolean]> = [
    ['secret', 'secret', true],
    ['', '', true],
    ['secret', 'secreT', false],
    ['secret', 'secret2', false],
    ['secret', '', false],
    ['', 'secret', false],
    ['é', 'e', false], // equal in characters, not in bytes
    ['é', 'é', true],
    ['ab', 'é', false], // equal in bytes, not in content
  ]
  for (const [a, b, want] of rows) t.equal(safeEqual(a, b), want, `${JSON.stringify(a)} vs ${JSON.stringify(b)} → ${want}`)
})

t.test('checkToken tells missing from wrong', async (t) => {
  const expected = 'a-system-root-token-of-at-least-32-chars'
  const rows: Array<[string | undefined, AdminCheck]> = [
    [expected, 'ok'],
    [undefined, 'missing'],
    ['', 'missing'],
    ['x', 'wrong'],
    [`${expected}x`, 'wrong'],
    [expected.slice(0, -1), 'wrong'],
    [`${expected.slice(0, -1)}T`, 'wrong'],
    [expected.toUpperCase(), 'wrong'],
  ]
  for (const [presented, want] of rows) t.equal(checkToken(presented, expected), want, `${JSON.stringify(presented)} → ${want}`)
})

t.test('requireToken: 401 for none, 403 for another, 404 when no token is configured', async (t) => {
  const rows: Array<{ name: string; presented: string | undefined; expected: string | undefined; code?: KeepErrorCode }> = [
    { name: 'the right token passes', presented: 'mgmt', expected: 'mgmt' },
    { name: 'no token', presented: undefined, expected: 'mgmt', code: 'KEEP_UNAUTHORIZED' },
    { name: 'an empty token', presented: '', expected: 'mgmt', code: 'KEEP_UNAUTHORIZED' },
    { name: 'another token', presented: 'other', expected: 'mgmt', code: 'KEEP_FORBIDDEN' },
    { name: 'disabled, no token', presented: undefined, expected: undefined, code: 'KEEP_NOT_FOUND' },
    { name: 'disabled, any token', presented: 'mgmt', expected: undefined, code: 'KEEP_NOT_FOUND' },
  ]
  for (const row of rows) {
    const run = () => requireToken(row.presented, row.expected)
    if (row.code === undefined) t.doesNotThrow(run, row.name)
    else t.throws(run, { code: row.code }, row.name)
  }
})
