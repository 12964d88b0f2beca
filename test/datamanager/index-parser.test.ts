import t from 'tap'
import { IndexParser, MAX_INDEX_LINE } from '../../datamanager/index-parser.js'

const A = 'acbd18db4cc2f85cedef654fccc4a4d8'
const B = 'acbd18db4cc2f85cedef654fccc4a4d9'
const C = 'c0ffee0000000000000000000000000a'
const line = (hash: string, size = 3, mtime = '1707249451308502672'): string => `${hash}+${size} ${mtime}\n`

function parse(body: string, options = {}, chunk = body.length || 1): { parser: IndexParser; entries: Array<[string, number, bigint]>; complete: boolean } {
  const parser = new IndexParser(options)
  const entries: Array<[string, number, bigint]> = []
  const bytes = Buffer.from(body, 'latin1')
  for (let i = 0; i < bytes.length; i += chunk) {
    for (const e of parser.push(bytes.subarray(i, i + chunk))) entries.push([e.hash, e.size, e.mtime])
  }
  return { parser, entries, complete: parser.end() }
}

t.test('index parser: a complete index is sorted lines and one final empty line, however it is chunked', async (t) => {
  const body = line(A) + line(B, 67108864, '9007199254740993') + line(C, 0, '0') + '\n'
  for (const chunk of [1, 2, 7, 35, 64, body.length]) {
    const { entries, complete, parser } = parse(body, {}, chunk)
    t.same(entries, [[A, 3, 1707249451308502672n], [B, 67108864, 9007199254740993n], [C, 0, 0n]], `chunks of ${chunk}`)
    t.ok(complete, `complete in chunks of ${chunk}`)
    t.equal(parser.lines, 3)
  }
  t.ok(parse('\n').complete, 'an empty index is one empty line')
})

t.test('index parser: sizes the fast path does not take are still parsed exactly', async (t) => {
  const { entries, complete } = parse(`${A}+0000000000000000003 1\n${B}+9007199254740991 2\n\n`)
  t.ok(complete)
  t.same(entries, [[A, 3, 1n], [B, 9007199254740991, 2n]])
})

t.test('index parser: an index cut short or faulty is never complete', async (t) => {
  // [name, body, entries parsed before the fault, a KEEP_BAD_REQUEST fault (not just cut short), unsorted]
  const rows: Array<[string, string, number, boolean, boolean]> = [
    ['no final empty line', line(A) + line(B), 2, false, false],
    ['cut in the middle of a line', line(A) + line(B).slice(0, 20), 1, false, false],
    ['nothing at all', '', 0, false, false],
    ['bytes after the final empty line', `${line(A)}\n${line(B)}`, 1, true, false],
    ['two empty lines', `${line(A)}\n\n`, 1, true, false],
    ['a malformed line', `${line(A)}${B}+3\n\n`, 1, true, false],
    ['an uppercase hash', `${line(A.toUpperCase())}\n`, 0, true, false],
    ['a size beyond 2^53', `${line(A, 9007199254740992)}\n`, 0, true, false],
    ['a carriage return', `${A}+3 1\r\n\n`, 0, true, false],
    ['a hash listed twice', `${line(A)}${line(A)}\n`, 1, true, false],
    ['hashes out of order', `${line(B)}${line(A)}\n`, 1, true, true],
  ]
  for (const [name, body, count, fault, unsorted] of rows) {
    const { parser, entries, complete } = parse(body)
    t.notOk(complete, name)
    t.equal(entries.length, count, `${name}: entries before the fault are kept`)
    t.equal((parser.error as { code?: string } | undefined)?.code, fault ? 'KEEP_BAD_REQUEST' : undefined, `${name}: fault`)
    t.equal(parser.unsorted, unsorted, `${name}: unsorted flag`)
  }
})

t.test('index parser: every hash must lie inside the requested prefix', async (t) => {
  t.ok(parse(`${line(A)}${line(B)}\n`, { prefix: 'acbd' }).complete)
  const outside = parse(`${line(A)}${line(C)}\n`, { prefix: 'acbd' })
  t.notOk(outside.complete)
  t.equal(outside.parser.error?.message.includes('prefix'), true)
})

t.test('index parser: allowUnsorted accepts any order (the index is being spilled)', async (t) => {
  const { entries, complete } = parse(`${line(C)}${line(A)}${line(B)}\n`, { allowUnsorted: true })
  t.ok(complete)
  t.same(entries.map((e) => e[0]), [C, A, B])
})

t.test('index parser: a line of exactly 1 KiB is parsed, one byte more is a fault however it is chunked', async (t) => {
  const at = `${A}+3 ${'1'.repeat(MAX_INDEX_LINE - 35)}`
  t.equal(at.length, MAX_INDEX_LINE)
  for (const chunk of [1, 7, 1000, 1024, 4096]) {
    const ok = parse(`${at}\n\n`, {}, chunk)
    t.ok(ok.complete, `1024 bytes, chunks of ${chunk}: accepted`)
    t.equal(ok.parser.lineTooLong, false)
    const over = parse(`${at}1\n\n`, {}, chunk)
    t.notOk(over.complete, `1025 bytes, chunks of ${chunk}: refused`)
    t.equal(over.parser.lineTooLong, true, `chunks of ${chunk}: lineTooLong`)
    t.equal((over.parser.error as { code?: string } | undefined)?.code, 'KEEP_BAD_REQUEST')
  }
})

t.test('index parser: a 64 MiB line without a newline is refused after its first chunk, holding at most 1 KiB', async (t) => {
  const parser = new IndexParser()
  const chunk = Buffer.alloc(64 << 10, 'a')
  parser.push(Buffer.from(line(A)))
  let chunks = 0
  for (let i = 0; i < 1024 && parser.error === undefined; i++) {
    parser.push(chunk)
    chunks++
  }
  t.equal(chunks, 1, 'the first 64 KiB chunk of the line already faults')
  t.equal(parser.lineTooLong, true)
  const byBytes = new IndexParser()
  let fed = 0
  for (; fed < 4096 && byBytes.error === undefined; fed += 100) byBytes.push(Buffer.alloc(100, 'b'))
  t.equal(fed, 1100, 'fed in 100-byte pieces, it faults once 1 KiB is passed')
  t.equal(byBytes.lineTooLong, true)
})

t.test('index parser: pushGroups cuts the index into 3-hex prefix groups holding exactly their lines’ bytes, however it is chunked', async (t) => {
  const D = 'acbe0000000000000000000000000001'
  const E = 'c0fffe00000000000000000000000002'
  const lines = [line(A), line(B), line(D), line(C), line(E)]
  const body = `${lines.join('')}\n`
  for (const chunk of [1, 5, 36, 60, 64, body.length]) {
    const parser = new IndexParser()
    const groups: Array<{ prefix: string; hashes: string[]; bytes: string }> = []
    const bytes = Buffer.from(body, 'latin1')
    for (let i = 0; i < bytes.length; i += chunk) {
      for (const g of parser.pushGroups(bytes.subarray(i, i + chunk))) groups.push({ prefix: g.prefix, hashes: g.entries.map((e) => e.hash), bytes: g.bytes.toString('latin1') })
    }
    t.ok(parser.end(), `complete in chunks of ${chunk}`)
    t.same(
      groups,
      [
        { prefix: 'acb', hashes: [A, B, D], bytes: lines[0]! + lines[1]! + lines[2]! },
        { prefix: 'c0f', hashes: [C, E], bytes: lines[3]! + lines[4]! },
      ],
      `chunks of ${chunk}`,
    )
  }
  const cut = new IndexParser()
  t.same(cut.pushGroups(Buffer.from(lines.join(''), 'latin1')).map((g) => g.prefix), ['acb'], 'without the final empty line the last group is never complete')
  t.notOk(cut.end())
})

t.test('index parser: mtimes of any length come out exact', async (t) => {
  for (const mtime of ['0', '7', '000000001', '999999999', '1000000000', '1707249451308502672', '18446744073709551615', '123456789012345678901234', '1234567890123456789012345']) {
    const { entries, complete } = parse(`${line(A, 3, mtime)}\n`)
    t.ok(complete, mtime)
    t.equal(entries[0]?.[2], BigInt(mtime), `${mtime} exact`)
  }
})

t.test('index parser: checkOnly finds exactly what a parse finds — the same faults, flags, lines and groups — without entries', async (t) => {
  const D = 'acbe0000000000000000000000000001'
  const long = `${A}+3 ${'1'.repeat(MAX_INDEX_LINE)}\n`
  const bodies: Array<[string, string, object]> = [
    ['sorted', `${line(A)}${line(B)}${line(D)}${line(C)}\n`, {}],
    ['slow-path sizes', `${A}+0000000000000000003 1\n${B}+9007199254740991 2\n\n`, {}],
    ['no final empty line', line(A) + line(B), {}],
    ['cut mid-line', line(A) + line(B).slice(0, 20), {}],
    ['nothing', '', {}],
    ['after the final line', `${line(A)}\n${line(B)}`, {}],
    ['malformed', `${line(A)}${B}+3\n\n`, {}],
    ['uppercase', `${line(A.toUpperCase())}\n`, {}],
    ['size beyond 2^53', `${line(A, 9007199254740992)}\n`, {}],
    ['carriage return', `${A}+3 1\r\n\n`, {}],
    ['twice', `${line(A)}${line(A)}\n`, {}],
    ['twice, slow path', `${A}+03 1\n${A}+3 1\n\n`, {}],
    ['out of order', `${line(B)}${line(A)}\n`, {}],
    ['out of order, slow path', `${B}+03 1\n${A}+03 1\n\n`, {}],
    ['out of order across prefixes', `${line(C)}${line(A)}\n`, {}],
    ['inside the prefix', `${line(A)}${line(B)}\n`, { prefix: 'acbd' }],
    ['outside the prefix', `${line(A)}${line(C)}\n`, { prefix: 'acbd' }],
    ['a line too long', `${line(A)}${long}\n`, {}],
  ]
  const run = (body: string, options: object, chunk: number) => {
    const parser = new IndexParser(options)
    const bytes = Buffer.from(body, 'latin1')
    const groups: Array<[string, string, number]> = []
    let entries = 0
    for (let i = 0; i < bytes.length; i += chunk) {
      for (const g of parser.pushGroups(bytes.subarray(i, i + chunk))) {
        groups.push([g.prefix, g.bytes.toString('latin1'), g.lines])
        entries += g.entries.length
      }
    }
    return { end: parser.end(), lines: parser.lines, error: parser.error?.message, unsorted: parser.unsorted, lineTooLong: parser.lineTooLong, groups, entries }
  }
  for (const [name, body, options] of bodies) {
    for (const chunk of [1, 7, 64, Math.max(1, body.length)]) {
      const full = run(body, options, chunk)
      const checked = run(body, { ...options, checkOnly: true }, chunk)
      t.equal(checked.entries, 0, `${name}: no entries`)
      t.same({ ...checked, entries: full.entries }, full, `${name}, chunks of ${chunk}`)
    }
  }
  t.throws(() => new IndexParser({ checkOnly: true, allowUnsorted: true }), /do not go together/)
})
