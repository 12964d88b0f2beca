import { isDeepStrictEqual } from 'node:util'
import t from 'tap'
import fc from 'fast-check'
import { isKeepError } from '../../shared/errors.js'
import {
  listDigest,
  parsePullList,
  parseTrashList,
  pullItemCodec,
  serializePullList,
  serializeTrashList,
  trashItemCodec,
  type ListContext,
  type PullItem,
  type TrashItem,
} from '../../shared/worklist-items.js'

const HASH = 'acbd18db4cc2f85cedef654fccc4a4d8'
const LOC = `${HASH}+3`
const KEEP0 = 'http://keep0.example:25107'
const KEEP1 = 'https://keep1.example:25107'
const MOUNT = 'zzzzz-nyw5e-000000000000001'
const SERVERS = new Set([KEEP0, KEEP1].map((u) => new URL(u).origin))
const ctx: ListContext = {
  isKnownServer: (url) => SERVERS.has(new URL(url).origin),
  isKnownMount: (uuid) => uuid === MOUNT,
}

const json = (v: unknown): string => JSON.stringify(v)

t.test('pull list: valid lists parse to their items', async (t) => {
  const rows: Array<{ name: string; body: string; want: PullItem[] }> = [
    { name: 'an empty list clears', body: '[]', want: [] },
    {
      name: 'a full item keeps every field',
      body: json([{ locator: LOC, servers: [KEEP1, KEEP0], mount_uuid: MOUNT }]),
      want: [{ locator: LOC, servers: [KEEP1, KEEP0], mount_uuid: MOUNT }],
    },
    { name: 'no mount_uuid is absent', body: json([{ locator: LOC, servers: [KEEP0] }]), want: [{ locator: LOC, servers: [KEEP0] }] },
    {
      name: 'an empty mount_uuid is absent',
      body: json([{ locator: LOC, servers: [KEEP0], mount_uuid: '' }]),
      want: [{ locator: LOC, servers: [KEEP0] }],
    },
    {
      name: 'a null mount_uuid is absent',
      body: json([{ locator: LOC, servers: [KEEP0], mount_uuid: null }]),
      want: [{ locator: LOC, servers: [KEEP0] }],
    },
    {
      name: 'unknown keys are ignored and dropped',
      body: json([{ locator: LOC, servers: [KEEP0], priority: 3, extra: { a: 1 } }]),
      want: [{ locator: LOC, servers: [KEEP0] }],
    },
    {
      name: 'a server matches by origin, with or without a path',
      body: json([{ locator: `${LOC}+K@zzzzz`, servers: [`${KEEP0}/`] }]),
      want: [{ locator: `${LOC}+K@zzzzz`, servers: [`${KEEP0}/`] }],
    },
    {
      name: 'several items keep their order',
      body: json([
        { locator: LOC, servers: [KEEP0] },
        { locator: 'd41d8cd98f00b204e9800998ecf8427e+0', servers: [KEEP1] },
      ]),
      want: [
        { locator: LOC, servers: [KEEP0] },
        { locator: 'd41d8cd98f00b204e9800998ecf8427e+0', servers: [KEEP1] },
      ],
    },
  ]
  for (const row of rows) t.same(parsePullList(row.body, ctx), row.want, row.name)
})

const badItem = (item: Record<string, unknown>, at = 0): string =>
  json([...Array.from({ length: at }, () => ({ locator: LOC, servers: [KEEP0] })), item])

t.test('pull list: every invalid form is KEEP_BAD_REQUEST', async (t) => {
  const rows: Array<{ name: string; body: string }> = [
    { name: 'an empty body is invalid JSON', body: '' },
    { name: 'truncated JSON is invalid', body: '[{"locator":' },
    { name: 'a duplicate key is invalid JSON', body: `[{"locator":"${LOC}","locator":"x","servers":["${KEEP0}"]}]` },
    { name: 'an object is not an array', body: '{}' },
    { name: 'null is not an array', body: 'null' },
    { name: 'an item that is not an object', body: '["x"]' },
    { name: 'a missing locator', body: badItem({ servers: [KEEP0] }) },
    { name: 'a locator that is a number', body: badItem({ locator: 3, servers: [KEEP0] }) },
    { name: 'a locator without a size hint', body: badItem({ locator: HASH, servers: [KEEP0] }, 3) },
    { name: 'a locator with an uppercase hash', body: badItem({ locator: `${HASH.toUpperCase()}+3`, servers: [KEEP0] }) },
    { name: 'a locator with an empty hint', body: badItem({ locator: `${LOC}++K`, servers: [KEEP0] }) },
    { name: 'missing servers', body: badItem({ locator: LOC }) },
    { name: 'servers that are not an array', body: badItem({ locator: LOC, servers: KEEP0 }) },
    { name: 'an empty server list', body: badItem({ locator: LOC, servers: [] }) },
    { name: 'a server that is not a string', body: badItem({ locator: LOC, servers: [KEEP0, 7] }) },
    { name: 'a server that is not a URL', body: badItem({ locator: LOC, servers: ['keep0:25107 x'] }) },
    { name: 'a server that is not http(s)', body: badItem({ locator: LOC, servers: ['ftp://keep0.example:25107'] }) },
    { name: 'a server outside the cluster', body: badItem({ locator: LOC, servers: [KEEP0, 'http://x:1'] }, 2) },
    { name: 'an unknown mount', body: badItem({ locator: LOC, servers: [KEEP0], mount_uuid: 'zzzzz-nyw5e-999999999999999' }) },
    { name: 'a mount_uuid that is not a string', body: badItem({ locator: LOC, servers: [KEEP0], mount_uuid: 1 }) },
  ]
  for (const row of rows) {
    t.throws(() => parsePullList(row.body, ctx), { code: 'KEEP_BAD_REQUEST' }, row.name)
  }
})

t.test('trash list: valid lists parse with exact bigint mtimes', async (t) => {
  const rows: Array<{ name: string; body: string; want: TrashItem[] }> = [
    { name: 'an empty list clears', body: '[]', want: [] },
    {
      name: 'an mtime beyond 2^53 as a JSON number is exact',
      body: `[{"locator":"${LOC}","block_mtime":1707249451308502672,"mount_uuid":"${MOUNT}"}]`,
      want: [{ locator: LOC, block_mtime: 1707249451308502672n, mount_uuid: MOUNT }],
    },
    {
      name: 'an mtime as a decimal string is exact',
      body: `[{"locator":"${LOC}","block_mtime":"1707249451308502673"}]`,
      want: [{ locator: LOC, block_mtime: 1707249451308502673n }],
    },
    {
      name: 'the largest int64 mtime is accepted',
      body: `[{"locator":"${LOC}","block_mtime":9223372036854775807,"mount_uuid":""}]`,
      want: [{ locator: LOC, block_mtime: 9223372036854775807n }],
    },
    {
      name: 'mtime zero and unknown keys are fine',
      body: `[{"locator":"${LOC}","block_mtime":0,"note":"x"}]`,
      want: [{ locator: LOC, block_mtime: 0n }],
    },
  ]
  for (const row of rows) t.same(parseTrashList(row.body, ctx), row.want, row.name)
})

t.test('trash list: every invalid form is KEEP_BAD_REQUEST', async (t) => {
  const item = (mtime: string, extra = ''): string => `[{"locator":"${LOC}","block_mtime":${mtime}${extra}}]`
  const rows: Array<{ name: string; body: string }> = [
    { name: 'invalid JSON', body: '[{"locator"' },
    { name: 'not an array', body: '"x"' },
    { name: 'a missing block_mtime', body: `[{"locator":"${LOC}"}]` },
    { name: 'a null block_mtime', body: item('null') },
    { name: 'a boolean block_mtime', body: item('true') },
    { name: 'a fractional block_mtime', body: item('1.5') },
    { name: 'an exponent block_mtime', body: item('1e18') },
    { name: 'a negative block_mtime', body: item('-1') },
    { name: 'a non-decimal string block_mtime', body: item('"0x10"') },
    { name: 'an empty string block_mtime', body: item('""') },
    { name: 'a block_mtime beyond int64', body: item('9223372036854775808') },
    { name: 'a locator without a size hint', body: `[{"locator":"${HASH}","block_mtime":1}]` },
    { name: 'a missing locator', body: '[{"block_mtime":1}]' },
    { name: 'an unknown mount', body: item('1', ',"mount_uuid":"zzzzz-nyw5e-999999999999999"') },
  ]
  for (const row of rows) {
    t.throws(() => parseTrashList(row.body, ctx), { code: 'KEEP_BAD_REQUEST' }, row.name)
  }
})

t.test('trash list: 1707249451308502672 survives parse → serialise → parse exactly', async (t) => {
  const body = `[{"locator":"${LOC}","block_mtime":1707249451308502672}]`
  const items = parseTrashList(body, ctx)
  t.equal(items[0]?.block_mtime, 1707249451308502672n)
  const text = serializeTrashList(items)
  t.match(text, /"block_mtime":1707249451308502672[,}]/, 'written as a bare number with every digit')
  t.equal(text, body)
  t.same(parseTrashList(text, ctx), items)
})

t.test('lists: an error is a KeepError even when a locator error is behind it', async (t) => {
  try {
    parsePullList(badItem({ locator: 'nothex', servers: [KEEP0] }), ctx)
    t.fail('should throw')
  } catch (err) {
    t.ok(isKeepError(err, 'KEEP_BAD_REQUEST'))
  }
})

const hashArb = fc.stringMatching(/^[0-9a-f]{32}$/)
const locatorArb = fc.tuple(hashArb, fc.nat({ max: 64 * 1024 * 1024 })).map(([h, n]) => `${h}+${n}`)
const mountArb = fc.constant(MOUNT)

t.test('pull list: serialise → parse is the identity (property)', async (t) => {
  const itemArb = fc.record(
    { locator: locatorArb, servers: fc.array(fc.constantFrom(KEEP0, KEEP1), { minLength: 1, maxLength: 4 }), mount_uuid: mountArb },
    { requiredKeys: ['locator', 'servers'], noNullPrototype: true },
  )
  const roundTrips = fc.property(fc.array(itemArb, { maxLength: 20 }), (items) =>
    isDeepStrictEqual(parsePullList(serializePullList(items), ctx), items) &&
    items.every((item) => isDeepStrictEqual(pullItemCodec.decode(pullItemCodec.encode(item)), item)))
  t.doesNotThrow(() => fc.assert(roundTrips, { numRuns: 200 }))
})

t.test('trash list: serialise → parse is the identity for any int64 mtime (property)', async (t) => {
  const itemArb = fc.record(
    { locator: locatorArb, block_mtime: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }), mount_uuid: mountArb },
    { requiredKeys: ['locator', 'block_mtime'], noNullPrototype: true },
  )
  const roundTrips = fc.property(fc.array(itemArb, { maxLength: 20 }), (items) =>
    isDeepStrictEqual(parseTrashList(serializeTrashList(items), ctx), items) &&
    items.every((item) => isDeepStrictEqual(trashItemCodec.decode(trashItemCodec.encode(item)), item)))
  t.doesNotThrow(() => fc.assert(roundTrips, { numRuns: 200 }))
})

t.test('codecs: a decoded item is not checked against the cluster (it may have changed since)', async (t) => {
  const item: PullItem = { locator: LOC, servers: ['http://gone.example:1'], mount_uuid: 'zzzzz-nyw5e-gone00000000000' }
  t.same(pullItemCodec.decode(pullItemCodec.encode(item)), item)
  t.throws(() => trashItemCodec.decode('{"locator":"x"}'), { code: 'KEEP_BAD_REQUEST' }, 'a broken record still fails')
})

t.test('list digest: sha256 hex of the body, the same for string and Buffer', async (t) => {
  t.equal(listDigest(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  t.equal(listDigest('[]'), listDigest(Buffer.from('[]')))
  t.not(listDigest('[]'), listDigest('[ ]'))
})

t.test('trash list body: each item parses exactly as the schema alone would, accepted or refused', async (t) => {
  const { parseTrashListBody } = await import('../../shared/worklist-items.js')
  const outcome = async (parse: () => TrashItem[] | Promise<TrashItem[]>): Promise<unknown> => {
    try {
      return { items: serializeTrashList(await parse()), keys: (await parse()).map((i) => Object.keys(i)) }
    } catch (err) {
      return isKeepError(err, 'KEEP_BAD_REQUEST') ? 'KEEP_BAD_REQUEST' : err
    }
  }
  const items = [
    `{"locator":"${LOC}","block_mtime":1707249451308502672}`,
    `{"locator":"${LOC}","block_mtime":9223372036854775807,"mount_uuid":"${MOUNT}"}`,
    `{"locator":"${LOC}","block_mtime":1,"mount_uuid":""}`,
    `{"locator":"${LOC}","block_mtime":1,"mount_uuid":null}`,
    `{"locator":"${LOC}","block_mtime":1,"extra":[1,{"a":2}]}`,
    `{"block_mtime":1,"locator":"${LOC}+Afoo@abc"}`,
    `{"locator":"${LOC}","block_mtime":"12"}`,
    `{"locator":"${LOC}","block_mtime":9223372036854775808}`,
    `{"locator":"${LOC}","block_mtime":-1}`,
    `{"locator":"${LOC}","block_mtime":1.5}`,
    `{"locator":"${LOC}","block_mtime":1e3}`,
    `{"locator":"${LOC}"}`,
    `{"locator":"${HASH}","block_mtime":1}`,
    `{"locator":"nope","block_mtime":1}`,
    `{"locator":3,"block_mtime":1}`,
    `{"locator":"${LOC}","block_mtime":1,"mount_uuid":"zzzzz-nyw5e-999999999999999"}`,
    `{"locator":"${LOC}","block_mtime":1,"mount_uuid":7}`,
    `{"locator":"${LOC}","block_mtime":1,"__proto__":{"x":1}}`,
    `["${LOC}",1]`,
    `null`,
  ]
  for (const item of items) {
    const body = `[${item},${item}]`
    t.same(await outcome(() => parseTrashListBody(Buffer.from(body), ctx)), await outcome(() => parseTrashList(body, ctx)), item)
  }
})
