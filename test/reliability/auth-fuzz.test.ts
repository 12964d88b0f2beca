import t from 'tap'
import { rawStatus } from '../helpers/block-client.js'
import { createHash, randomBytes } from 'node:crypto'
import { createSigner } from '../../shared/signer.js'
import { parseLocator } from '../../shared/locator.js'
import { startCluster, call, ADMIN_TOKEN, SIGNING_KEY } from '../helpers/cluster.js'
import { scale, figure, progress } from '../helpers/soak.js'

const HEX = '0123456789abcdef'
const md5 = (b: string): string => createHash('md5').update(b).digest('hex')
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!
const otherHex = (c: string): string => pick([...HEX].filter((x) => x !== c))

/** Replaces the character at `i` with `c`. */
const at = (s: string, i: number, c: string): string => s.slice(0, i) + c + s.slice(i + 1)

interface Parts {
  hash: string
  size: string
  sig: string
  exp: string
}

function split(signed: string): Parts {
  const m = /^([0-9a-f]{32})\+(\d+)\+A([0-9a-f]{40})@([0-9a-f]{8})$/.exec(signed)
  if (!m) throw new Error(`not a signed locator: ${signed}`)
  return { hash: m[1]!, size: m[2]!, sig: m[3]!, exp: m[4]! }
}

const join = (p: Parts, sig = p.sig, exp = p.exp): string => `${p.hash}+${p.size}+A${sig}@${exp}`

/** A near miss of a valid (locator, token) pair: one small change a buggy check could let through. */
function mutate(signed: string, token: string, signExpired: (token: string) => string): { locator: string; token: string; kind: string } {
  const p = split(signed)
  const kinds: Array<() => { locator: string; token: string; kind: string }> = [
    () => {
      const i = Math.floor(Math.random() * 40)
      return { locator: join(p, at(p.sig, i, otherHex(p.sig[i]!))), token, kind: 'sig-digit' }
    },
    () => {
      const i = Math.floor(Math.random() * 8)
      return { locator: join(p, p.sig, at(p.exp, i, otherHex(p.exp[i]!))), token, kind: 'exp-digit' }
    },
    () => {
      const i = Math.floor(Math.random() * 32)
      return { locator: join({ ...p, hash: at(p.hash, i, otherHex(p.hash[i]!)) }), token, kind: 'hash-digit' }
    },
    () => ({ locator: join(p, p.sig.slice(0, 39)), token, kind: 'sig-truncated' }),
    () => ({ locator: join(p, p.sig + pick([...HEX])), token, kind: 'sig-extended' }),
    () => ({ locator: join(p, p.sig, p.exp.slice(0, 7)), token, kind: 'exp-truncated' }),
    () => ({ locator: join(p, p.sig, p.exp + pick([...HEX])), token, kind: 'exp-extended' }),
    () => {
      const letters = [...p.sig].map((c, i) => (c >= 'a' ? i : -1)).filter((i) => i >= 0)
      if (letters.length === 0) return { locator: join(p, p.sig.toUpperCase()), token, kind: 'sig-case' }
      const i = pick(letters)
      return { locator: join(p, at(p.sig, i, p.sig[i]!.toUpperCase())), token, kind: 'sig-case' }
    },
    () => ({ locator: join(p, p.sig.toUpperCase(), p.exp.toUpperCase()), token, kind: 'all-upper' }),
    () => ({ locator: `${p.hash}+${p.size}+a${p.sig}@${p.exp}`, token, kind: 'hint-lowercase' }),
    () => ({ locator: `${signed}+A${p.sig}@${p.exp}`, token, kind: 'hint-twice' }),
    () => ({ locator: `${p.hash}+${p.size}+A${p.sig}${p.exp}`, token, kind: 'no-at' }),
    () => {
      const i = Math.floor(Math.random() * token.length)
      const c = token[i]!
      const swapped = c === 'x' ? 'y' : 'x'
      return { locator: signed, token: at(token, i, swapped), kind: 'token-char' }
    },
    () => ({ locator: signed, token: token.slice(0, -1), kind: 'token-truncated' }),
    () => ({ locator: signed, token: `${token}x`, kind: 'token-extended' }),
    () => ({ locator: signed, token: token.toUpperCase(), kind: 'token-case' }),
    () => ({ locator: signed, token: ` ${token}`, kind: 'token-space' }),
    () => ({ locator: signExpired(token), token, kind: 'expired-by-1s' }),
  ]
  return pick(kinds)()
}

const NOW = Date.UTC(2026, 0, 1)
const TTL = 14 * 24 * 3600

t.test('auth fuzz: near-miss signatures and tokens never read through the core signer', async (t) => {
  const signer = createSigner({ key: SIGNING_KEY, ttlSeconds: TTL, maxClockSkewSeconds: 600, now: () => NOW })
  const cases = scale('auth', 3000, 100_000)
  let allowedBad = 0
  let allowedGood = 0
  const kinds = new Map<string, number>()
  for (let n = 0; n < cases; n++) {
    const token = `v2/zzzzz-gj3su-${randomBytes(8).toString('hex').slice(0, 15)}/${randomBytes(20).toString('hex')}`
    const hash = md5(String(n))
    const signed = signer.sign(`${hash}+${n}`, token)
    // The unmodified pair reads.
    try {
      signer.verify(parseLocator(signed), token)
      allowedGood++
    } catch {
      /* counted below as a refused good pair */
    }
    const m = mutate(signed, token, (tok) => signer.sign(`${hash}+${n}`, tok, Math.floor(NOW / 1000) - 1))
    if (m.locator === signed && m.token === token) continue
    kinds.set(m.kind, (kinds.get(m.kind) ?? 0) + 1)
    let ok = false
    try {
      signer.verify(parseLocator(m.locator), m.token)
      ok = true
    } catch {
      ok = false
    }
    if (ok) {
      allowedBad++
      t.fail(`a near miss read: ${m.kind}`)
    }
    progress('auth-fuzz', n + 1, cases)
  }
  t.equal(allowedGood, cases, 'every unmodified pair reads')
  t.equal(allowedBad, 0, 'no near miss reads')
  t.equal(kinds.size, 18, 'every kind of near miss was tried')
  figure(t, 'auth-fuzz', { cases, reads_allowed_bad: allowedBad, reads_allowed_good: allowedGood, kinds: kinds.size, layer: 'signer' })
})

t.test('auth fuzz over HTTP: near misses get no bytes; admin endpoints refuse user tokens; query and cookie tokens never authenticate', async (t) => {
  const cluster = await startCluster(t)
  const url = cluster.urls[0]!
  const userToken = `v2/zzzzz-gj3su-000000000000001/${'u'.repeat(40)}`
  const data = 'fuzzed block'
  const put = await call(url, 'PUT', `/${md5(data)}`, { body: data, token: userToken })
  t.equal(put.status, 200)
  const signed = put.text.trim()
  const signer = cluster.keepstores[0]!.keepstore.signer!
  const cases = scale('auth_http', 200, 5000)
  let allowedBad = 0
  const statuses = new Map<number, number>()
  for (let n = 0; n < cases; n++) {
    const m = mutate(signed, userToken, (tok) => signer.sign(`${md5(data)}+${data.length}`, tok, Math.floor(Date.now() / 1000) - 1))
    if (m.locator === signed && m.token === userToken) continue
    // `Bearer  <token>`: whitespace around the header's token is not part of it.
    if (m.kind === 'token-space') continue
    const res = await call(url, n % 2 ? 'GET' : 'HEAD', `/${m.locator}`, { token: m.token })
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
    if (res.status === 200 || res.text.includes(data)) {
      allowedBad++
      t.fail(`near miss served over HTTP: ${m.kind}`)
    }
    progress('auth-fuzz-http', n + 1, cases)
  }
  t.equal(allowedBad, 0, 'no near miss got a 200')
  t.ok([...statuses.keys()].every((s) => s === 400 || s === 401), 'every near miss is 400 or 401')
  t.equal((await call(url, 'GET', `/${signed}`, { token: userToken })).status, 200, 'the unmodified locator reads')

  // Admin endpoints with a user token → 403.
  const mount = cluster.config.keepstores[0]!.volumes[0]!.uuid
  const loc = `${md5(data)}+${data.length}`
  const admin: Array<[string, string, string?]> = [
    ['GET', '/index'],
    ['GET', '/index/ab'],
    ['GET', '/mounts'],
    ['GET', `/mounts/${mount}/blocks`],
    ['PUT', '/pull', '[]'],
    ['GET', '/pull'],
    ['PUT', '/trash', '[]'],
    ['GET', '/trash'],
    ['PUT', `/untrash/${loc}`, ''],
    ['DELETE', `/${loc}`],
    ['GET', '/status'],
  ]
  for (const [method, p, body] of admin) {
    t.equal((await call(url, method, p, { token: userToken, ...(body !== undefined ? { body } : {}) })).status, 403, `${method} ${p} with a user token`)
  }
  const port = Number(new URL(url).port)
  t.equal(await rawStatus(port, `TOUCH /${loc} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${userToken}\r\n\r\n`), 403, 'TOUCH with a user token')

  // Tokens outside the Authorization header never authenticate.
  for (const p of ['/index', '/status', '/mounts']) {
    t.equal((await call(url, 'GET', `${p}?api_token=${ADMIN_TOKEN}`)).status, 401, `${p} with the admin token in the query`)
    t.equal((await call(url, 'GET', p, { headers: { cookie: `arvados_api_token=${ADMIN_TOKEN}; api_token=${ADMIN_TOKEN}` } })).status, 401, `${p} with the admin token in a cookie`)
  }
  t.equal((await call(url, 'GET', `/${signed}?api_token=${encodeURIComponent(userToken)}`)).status, 401, 'a signed GET with its token in the query')
  t.equal((await call(url, 'GET', `/${signed}`, { headers: { cookie: `arvados_api_token=${userToken}` } })).status, 401, 'a signed GET with its token in a cookie')
  figure(t, 'auth-fuzz-http', { cases, reads_allowed_bad: allowedBad, admin_endpoints_403: admin.length + 1, layer: 'http' })
})

