import assert from 'node:assert/strict'
import t from 'tap'
import fc from 'fast-check'
import { bareLocator, formatLocator, parseLocator, type Locator } from '../../shared/locator.js'

const H = 'acbd18db4cc2f85cedef654fccc4a4d8'
const SIG = `A${'0123456789'.repeat(4)}@7fffffff`

t.test('parseLocator: valid locators', async (t) => {
  const rows: Array<[string, Locator]> = [
    [H, { hash: H, size: undefined, hints: [], signatures: [] }],
    [`${H}+3`, { hash: H, size: 3, hints: [], signatures: [] }],
    ['d41d8cd98f00b204e9800998ecf8427e+0', { hash: 'd41d8cd98f00b204e9800998ecf8427e', size: 0, hints: [], signatures: [] }],
    [`${H}+67108864`, { hash: H, size: 67108864, hints: [], signatures: [] }],
    [`${H}+9007199254740991`, { hash: H, size: 9007199254740991, hints: [], signatures: [] }],
    [`${H}+003`, { hash: H, size: 3, hints: [], signatures: [] }], // digits only, as Keep accepts
    [`${H}+3+K@zzzzz+Zfoo`, { hash: H, size: 3, hints: ['K@zzzzz', 'Zfoo'], signatures: [] }],
    [`${H}+K@zzzzz`, { hash: H, size: undefined, hints: ['K@zzzzz'], signatures: [] }],
    [`${H}+3+${SIG}`, { hash: H, size: 3, hints: [], signatures: [SIG] }],
    [`${H}+3+K@zzzzz+${SIG}+Zfoo`, { hash: H, size: 3, hints: ['K@zzzzz', 'Zfoo'], signatures: [SIG] }],
    [`${H}+${SIG}`, { hash: H, size: undefined, hints: [], signatures: [SIG] }],
    [`${H}+3+Afoo`, { hash: H, size: 3, hints: [], signatures: ['Afoo'] }], // the signer judges it
    [`${H}+3+A+${SIG}`, { hash: H, size: 3, hints: [], signatures: ['A', SIG] }],
    [`${H}+3+z9`, { hash: H, size: 3, hints: ['z9'], signatures: [] }],
  ]
  for (const [text, want] of rows) t.same(parseLocator(text), want, text)
})

t.test('parseLocator: UTF-8 hints as Keep accepts them (TestGetLocatorInfo: +123456+👶🦈+Rzzzzz-abcdef)', async (t) => {
  const rows: Array<[string, Locator]> = [
    [`${H}+123456+👶🦈+Rzzzzz-abcdef`, { hash: H, size: 123456, hints: ['👶🦈', 'Rzzzzz-abcdef'], signatures: [] }],
    [`${H}+3+Kzé`, { hash: H, size: 3, hints: ['Kzé'], signatures: [] }],
    [`${H}+👶`, { hash: H, size: undefined, hints: ['👶'], signatures: [] }],
    [`${H}+3+🦈+${SIG}`, { hash: H, size: 3, hints: ['🦈'], signatures: [SIG] }],
  ]
  for (const [text, want] of rows) t.same(parseLocator(text), want, text)
})

t.test('parseLocator: every invalid form of §1 throws KEEP_INVALID_LOCATOR', async (t) => {
  const rows: Array<[string, string]> = [
    ['empty string', ''],
    ['uppercase hash', 'ACBD18DB4CC2F85CEDEF654FCCC4A4D8+3'],
    ['one uppercase digit', 'acbd18db4cc2f85cedef654fccc4a4D8+3'],
    ['31 hex digits', 'acbd18db4cc2f85cedef654fccc4a4d+3'],
    ['33 hex digits', 'acbd18db4cc2f85cedef654fccc4a4d80+3'],
    ['non-hex hash', 'acbd18db4cc2f85cedef654fccc4a4dg+3'],
    ['hash with a space', ' acbd18db4cc2f85cedef654fccc4a4d8'],
    ['a path, not a hash', 'index'],
    ['leading +', `+${H}+3`],
    ['only a +', '+'],
    ['++ before the size', `${H}++3`],
    ['++ after the size', `${H}+3++K@zzzzz`],
    ['trailing + after the hash', `${H}+`],
    ['trailing + after the size', `${H}+3+`],
    ['trailing + after a signature', `${H}+3+${SIG}+`],
    ['a second size', `${H}+3+4`],
    ['a digit hint after a hint', `${H}+K@zzzzz+3`],
    ['a digit hint after a signature', `${H}+${SIG}+3`],
    ['size with a letter', `${H}+3a`],
    ['size in hex', `${H}+0x10`],
    ['size with a decimal point', `${H}+3.0`],
    ['size with an exponent', `${H}+1e3`],
    ['size with a trailing space', `${H}+3 `],
    ['size beyond 2^53', `${H}+9007199254740992`],
    ['size of many digits', `${H}+${'9'.repeat(400)}`],
    ['hint with a space', `${H}+3+K zzzzz`],
    ['hint with a newline', `${H}+3+Kzz\n`],
    ['hint with a tab', `${H}+3+K\tz`],
    ['hint with DEL', `${H}+3+K\x7f`],
    ['hint with a non-breaking space', `${H}+3+👶\u00a0🦈`],
    ['hint with an ideographic space', `${H}+3+K\u3000`],
    ['hint with a line separator', `${H}+3+K\u2028`],
    ['a non-ASCII hash digit (Keep: aaa⛵aaa…)', `aaaaaaaaaaaaaa⛵aaaaaaaaaaaaaaaaa+1234`],
  ]
  for (const [name, text] of rows) {
    t.throws(() => parseLocator(text), { code: 'KEEP_INVALID_LOCATOR' }, name)
  }
})

t.test('formatLocator writes size, then hints, then signatures', async (t) => {
  const rows: Array<[Locator, string]> = [
    [{ hash: H, size: undefined, hints: [], signatures: [] }, H],
    [{ hash: H, size: 0, hints: [], signatures: [] }, `${H}+0`],
    [{ hash: H, size: 3, hints: ['K@zzzzz', 'Zfoo'], signatures: [SIG] }, `${H}+3+K@zzzzz+Zfoo+${SIG}`],
    [{ hash: H, size: undefined, hints: ['K@zzzzz'], signatures: ['Afoo', SIG] }, `${H}+K@zzzzz+Afoo+${SIG}`],
  ]
  for (const [loc, want] of rows) t.equal(formatLocator(loc), want, want)
  t.equal(formatLocator(parseLocator(`${H}+3+${SIG}+K@zzzzz`)), `${H}+3+K@zzzzz+${SIG}`, 'a signature moves last')
})

t.test('bareLocator is hash+size', async (t) => {
  t.equal(bareLocator(H, 3), `${H}+3`)
  t.equal(bareLocator('d41d8cd98f00b204e9800998ecf8427e', 0), 'd41d8cd98f00b204e9800998ecf8427e+0')
})

t.test('parseLocator and formatLocator round-trip any well-formed locator', async (t) => {
  const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n })
  const hintChar = fc.constantFrom(...'ABKZRabz019@_-.:'.split(''))
  const hint = fc
    .tuple(fc.constantFrom('K', 'Z', 'R', 'x', '@', '_'), fc.string({ unit: hintChar, maxLength: 12 }))
    .map(([first, rest]) => first + rest)
  const signature = fc.tuple(hex(40), hex(8)).map(([s, e]) => `A${s}@${e}`)
  const locator = fc.record({
    hash: hex(32),
    size: fc.option(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }),
    hints: fc.array(hint, { maxLength: 4 }),
    signatures: fc.array(signature, { maxLength: 2 }),
  }).map((loc): Locator => ({ ...loc }))
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(locator, (loc) => {
        assert.deepStrictEqual(parseLocator(formatLocator(loc)), loc)
      }),
      { numRuns: 500 },
    ),
  )
})
