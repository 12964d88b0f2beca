import { hash } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { md5Head, md5Short, md5WithTail } from '../../shared/md5-short.js'

const hex = (words: Uint32Array): string => [...words].map((w) => w.toString(16).padStart(8, '0')).join('')

t.test('md5Short: the MD5 of any ASCII string up to 55 characters, as node:crypto computes it; anything else is declined', async (t) => {
  const out = new Uint32Array(4)
  for (const s of ['', 'a', 'abc', 'message digest', 'acbd18db4cc2f85cedef654fccc4a4d8000000000000001', 'x'.repeat(55)]) {
    t.equal(md5Short(s, out) && hex(out), hash('md5', s), JSON.stringify(s))
  }
  fc.assert(
    fc.property(fc.string({ unit: 'binary-ascii', maxLength: 55 }), (s) => md5Short(s, out) && hex(out) === hash('md5', s)),
    { numRuns: 2000 },
  )
  const before = hex(out)
  t.notOk(md5Short('x'.repeat(56), out), 'longer than one block: declined')
  t.notOk(md5Short('é', out), 'not ASCII: declined')
  t.equal(hex(out), before, 'a declined string leaves the output alone')
})

t.test('md5WithTail: a packed 32-character head and any tails, as if hashed whole', async (t) => {
  const out = new Uint32Array(4)
  const head = new Int32Array(16)
  fc.assert(
    fc.property(fc.string({ unit: 'binary-ascii', minLength: 32, maxLength: 32 }), fc.array(fc.string({ unit: 'binary-ascii', maxLength: 23 }), { maxLength: 4 }), (h, tails) => {
      if (!md5Head(h, head)) return false
      return tails.every((tail) => md5WithTail(head, tail, out) && hex(out) === hash('md5', h + tail))
    }),
    { numRuns: 1000 },
  )
  t.notOk(md5Head('a'.repeat(31), head), 'a head is exactly 32 characters')
  t.ok(md5Head('a'.repeat(32), head))
  t.notOk(md5WithTail(head, 'x'.repeat(24), out), 'head and tail past one block: declined')
})
