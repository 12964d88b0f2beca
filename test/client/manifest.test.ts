import t from 'tap'
import { parseManifest } from '../../datamanager/manifest.js'
import { escapeName, manifestLine, planRead, unescapeName } from '../../client/manifest.js'
import { isKeepError } from '../../shared/errors.js'

const A = 'acbd18db4cc2f85cedef654fccc4a4d8'
const B = '37b51d194a7513e45b56f6524f2d51f2'
const MiB = 1024 * 1024

t.test('names escape as Arvados escapes them (and back), so a manifest line stays one space-separated line', async (t) => {
  const rows: Array<[string, string]> = [
    ['plain.txt', 'plain.txt'],
    ['two words', 'two\\040words'],
    ['tab\there', 'tab\\011here'],
    ['new\nline', 'new\\012line'],
    ['back\\slash', 'back\\134slash'],
    ['a:b', 'a\\072b'],
    ['del\x7f', 'del\\177'],
    ['non\u00a0breaking', 'non\\302\\240breaking'],
    ['naïve 👶', 'naïve\\040👶'],
  ]
  for (const [name, escaped] of rows) {
    t.equal(escapeName(name), escaped, JSON.stringify(name))
    t.equal(unescapeName(escaped), name, `${JSON.stringify(escaped)} back`)
  }
  const line = manifestLine([`${A}+3`], 3, 'my file: v2')
  t.equal(line, `. ${A}+3 0:3:my\\040file\\072\\040v2`)
  t.not(typeof parseManifest(`${line}\n`), 'string', 'the datamanager accepts the line')
  t.not(typeof parseManifest(`${manifestLine([`${A}+3`], 3, 'non\u00a0breaking')}\n`), 'string', 'also with a non-breaking space in the name')
})

t.test('get plans: a locator is its whole block; a manifest line its file segments', async (t) => {
  t.match(planRead(`${A}+3+Aabc@123`), { size: 3, name: undefined, pieces: [{ block: 0, from: 0, to: 3 }], blocks: [{ hash: A, text: `${A}+3+Aabc@123` }] })
  const two = planRead(`. ${A}+${64 * MiB} ${B}+10 0:${64 * MiB + 10}:f\n`)
  t.same(two.pieces, [{ block: 0, from: 0, to: 64 * MiB }, { block: 1, from: 0, to: 10 }])
  t.equal(two.size, 64 * MiB + 10)
  const middle = planRead(`. ${A}+100 ${B}+100 90:20:my\\040part`)
  t.same(middle.pieces, [{ block: 0, from: 90, to: 100 }, { block: 1, from: 0, to: 10 }], 'a segment across a block boundary')
  t.equal(middle.name, 'my part')
  const pieces = planRead(`. ${A}+100 ${B}+100 150:10:f 0:5:f`).pieces
  t.same(pieces, [{ block: 1, from: 50, to: 60 }, { block: 0, from: 0, to: 5 }], 'segments of one file, in their order')
  t.same(planRead(`. d41d8cd98f00b204e9800998ecf8427e+0 0:0:empty`).pieces, [], 'an empty file reads nothing')
})

t.test('get plans: bad input is one line and KEEP_INVALID_LOCATOR (exit 2)', async (t) => {
  const rows: Array<[string, RegExp]> = [
    ['nothex', /^bad locator "nothex": hash is not 32 lowercase hex digits$/],
    [A.toUpperCase(), /hash is not 32/],
    [A, /a size hint is needed/],
    [`${A}+${64 * MiB + 1}`, /at most 64 MiB/],
    [`${A}++3`, /empty hint/],
    [`x ${A}+3 0:3:f`, /stream name/],
    [`. ${A}+3`, /no file segment/],
    [`. 0:3:f`, /no locator/],
    [`. ${A} 0:3:f`, /size hint is needed/],
    [`. ${A}+3 0:4:f`, /goes past the stream's 3 bytes/],
    [`. ${A}+3 0:1:a 1:2:b`, /names 2 files \(a, b\): get one at a time/],
    [`. ${A}+3 0:3:f\n. ${B}+3 0:3:g`, /one line/],
    [`. ${A}+3 zero:3:f`, /not a pos:len:name segment/],
  ]
  for (const [arg, message] of rows) {
    try {
      planRead(arg)
      t.fail(`${JSON.stringify(arg)} accepted`)
    } catch (err) {
      t.ok(isKeepError(err, 'KEEP_INVALID_LOCATOR'), `${JSON.stringify(arg)}: KEEP_INVALID_LOCATOR`)
      t.match((err as Error).message, message)
      t.notMatch((err as Error).message, /\n/)
    }
  }
})
