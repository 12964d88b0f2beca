import t from 'tap'
import { parseTrashList, parsePullList, type ListContext } from '../../../shared/worklist-items.js'

const ctx: ListContext = { isKnownServer: (u) => u.startsWith('http://keep'), isKnownMount: (m) => m === 'zzzzz-nyw5e-000000000000000' }
const LOC = 'acbd18db4cc2f85cedef654fccc4a4d8+3'

/** The outcome of a parse: the items, or the error code. */
function outcome(parse: () => unknown): unknown {
  try {
    return parse()
  } catch (err) {
    return { code: (err as { code?: string }).code }
  }
}

t.test('list bodies parse the same from the request bytes (item by item) as from a string (whole)', async (t) => {
  const trash = [
    '[]',
    ' [ ] ',
    `[{"locator":"${LOC}","block_mtime":1707249451308502672}]`,
    `[{"locator":"${LOC}","block_mtime":"1707249451308502672","mount_uuid":"zzzzz-nyw5e-000000000000000"}]`,
    `[{"locator":"${LOC}","block_mtime":1707249451308502672,"x":[1,{"y":"]"}],"s":"a\\"]},{"}]`,
    `[{"locator":"${LOC}","block_mtime":1},{"locator":"${LOC}","block_mtime":-1}]`,
    `[{"locator":"${LOC}","block_mtime":1.5}]`,
    `[{"locator":"${LOC}","block_mtime":01}]`,
    `[{"locator":"${LOC}","block_mtime":1e3}]`,
    `[{"locator":"${LOC}","block_mtime":9223372036854775808}]`,
    `[{"locator":"${LOC}","block_mtime":1},]`,
    `[,{"locator":"${LOC}","block_mtime":1}]`,
    `[{"locator":"${LOC}","block_mtime":1}`,
    `[{"locator":"${LOC}","block_mtime":1}]]`,
    `[{"locator":"${LOC}","block_mtime":1}] x`,
    `[{"locator":"${LOC}","block_mtime":1}}`,
    `[{"locator":"${LOC}\u{1F476}","block_mtime":1}]`,
    '[{"locator":"unterminated',
    '{}',
    'null',
    '',
    '["x"]',
    '[1]',
  ]
  for (const body of trash) {
    t.same(outcome(() => parseTrashList(Buffer.from(body), ctx)), outcome(() => parseTrashList(body, ctx)), body)
  }
  const pull = [
    `[{"locator":"${LOC}","servers":["http://keep0:1"]}]`,
    `[{"locator":"${LOC}","servers":["http://x:1"]}]`,
    `[{"locator":"${LOC}","servers":[7]}]`,
    `[{"locator":"${LOC}","servers":[]}]`,
  ]
  for (const body of pull) {
    t.same(outcome(() => parsePullList(Buffer.from(body), ctx)), outcome(() => parsePullList(body, ctx)), body)
  }
  t.same(parseTrashList(Buffer.from(trash[2]!), ctx), [{ locator: LOC, block_mtime: 1707249451308502672n }], 'mtimes stay exact')
})
