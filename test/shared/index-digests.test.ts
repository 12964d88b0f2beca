import { createHash } from 'node:crypto'
import t from 'tap'
import { DigestBuilder, EMPTY_SHA256, INDEX_PREFIXES, parseDigests, PREFIX_COUNT } from '../../shared/index-digests.js'

const A = `a00${'1'.repeat(29)}+3 1707249451308502672\n`
const B = `a00${'2'.repeat(29)}+5 1707249451308502673\n`
const C = `fff${'3'.repeat(29)}+0 1\n`

t.test('digests: one line per prefix 000…fff, the sha256 of exactly that prefix’s lines, then an empty line', async (t) => {
  const builder = new DigestBuilder()
  for (const line of [A, B, C]) builder.add(line)
  const body = builder.body()
  t.ok(body.endsWith('\n\n'))
  const lines = body.slice(0, -2).split('\n')
  t.equal(lines.length, PREFIX_COUNT)
  t.equal(lines[0], `000 0 ${EMPTY_SHA256}`)
  t.equal(lines[0xa00], `a00 2 ${createHash('sha256').update(A + B).digest('hex')}`)
  t.equal(lines[0xfff], `fff 1 ${createHash('sha256').update(C).digest('hex')}`)
  const parsed = parseDigests(body)
  t.not(typeof parsed, 'string')
  t.same((parsed as Exclude<typeof parsed, string>)[0xa00], { blocks: 2, sha256: createHash('sha256').update(A + B).digest('hex') })
})

t.test('digests: anything but a well-formed body is refused with a reason', async (t) => {
  const good = new DigestBuilder().body()
  const lines = good.slice(0, -2).split('\n')
  const withLine = (i: number, line: string): string => `${[...lines.slice(0, i), line, ...lines.slice(i + 1)].join('\n')}\n\n`
  const rows: Array<[string, string]> = [
    ['no final empty line', good.slice(0, -1)],
    ['empty', ''],
    ['a line missing', `${lines.slice(1).join('\n')}\n\n`],
    ['an extra line', `${[...lines, lines[0]].join('\n')}\n\n`],
    ['prefixes out of order', withLine(1, lines[2]!)],
    ['uppercase hex', withLine(5, `005 0 ${EMPTY_SHA256.toUpperCase()}`)],
    ['a short sha256', withLine(5, `005 0 ${EMPTY_SHA256.slice(1)}`)],
    ['a count with a leading zero', withLine(5, `005 01 ${EMPTY_SHA256}`)],
    ['a negative count', withLine(5, `005 -1 ${EMPTY_SHA256}`)],
    ['no count', withLine(5, `005  ${EMPTY_SHA256}`)],
    ['a carriage return', withLine(5, `005 0 ${EMPTY_SHA256}\r`)],
    ['bytes after the final empty line', `${good}x`],
  ]
  t.not(typeof parseDigests(good), 'string', 'the body rows are cut from parses')
  for (const [name, body] of rows) t.type(parseDigests(body), 'string', name)
  t.equal(INDEX_PREFIXES[0xabc], 'abc')
})
