import { utimesSync } from 'node:fs'
import type { Test } from 'tap'
import type { RefusalCode } from '../../datamanager/sanity.js'
import { md5hex } from '../../shared/hash.js'
import { listDigest } from '../../shared/worklist-items.js'
import { liveHashes, volumeFiles } from './block-files.js'
import { ADMIN_TOKEN, call } from './cluster.js'
import { collection } from './datamanager-cluster.js'
import { blockFile, drained, listStatus, putOn, type DmResult, type KeepstoreProcess, type ListStatus, type ProcessCluster } from './process-cluster.js'

const EMPTY = listDigest('[]')
export const COLL = (n: number): string => `zzzzz-4zz18-${String(n).padStart(15, '0')}`

/** Sets a file's mtime `seconds` into the past (whole seconds, which utimes keeps exactly). */
export function ageBy(file: string, seconds: number): void {
  const s = Math.floor(Date.now() / 1000) - seconds
  utimesSync(file, s, s)
}

export interface Refusal {
  code: RefusalCode
  run: () => Promise<DmResult>
  /** Keepstores of the run's config that answer (and so get an empty trash list); default: the fixture's. */
  answering?: KeepstoreProcess[]
  /** Keepstores of the run's config that do not answer. */
  silent?: KeepstoreProcess[]
  arrange?: () => Promise<void>
  restore?: () => Promise<void>
}

export interface RefusalFixture {
  /** On every keepstore: keeps every index non-empty. */
  everywhere: string
  /** Unreferenced, 2 h old with a 1 h TTL, on the second keepstore: an unrefused run trashes it. */
  garbage: string
  /** Referenced, on its last rendezvous server only: an unrefused run pulls it. */
  lonely: string
  lonelyOrder: KeepstoreProcess[]
  /** A `.jsonl` text of `n` collections: the first references `first`, the others `everywhere`. */
  records(n: number, first?: string[]): string
  /**
   * Plants a sentinel pull list (`[]`) and trash list (one item for a block
   * nobody holds) on every keepstore of the run, runs it, and checks PROTOCOL
   * §8's refusal: exit 1, the refusal code in the report, no PUT /pull, only
   * `[]` to /trash — received by every keepstore that answered — and not one
   * block file removed or trashed.
   */
  expectRefusal(t: Test, r: Refusal): Promise<DmResult>
}

/** Work an unrefused run would do on `main` (three keepstores behind proxies), and the refusal check. */
export async function refusalFixture(pc: ProcessCluster, main: KeepstoreProcess[]): Promise<RefusalFixture> {
  const k1 = main[1]!
  const roots = main.map((k) => k.root)
  const everywhere = await Promise.all(main.map((k) => putOn(k, 'on every keepstore\n'))).then((l) => l[0]!)
  const garbage = await putOn(k1, 'old garbage\n')
  ageBy(blockFile(k1, garbage.slice(0, 32)), 7200)
  const lonelyData = 'referenced, on one keepstore\n'
  const lonelyOrder = pc.order(md5hex(lonelyData), main)
  const lonely = await putOn(lonelyOrder[2]!, lonelyData)
  const records = (n: number, first: string[] = [everywhere, lonely]): string =>
    Array.from({ length: n }, (_, i) => `${collection(COLL(i), i === 0 ? first : [everywhere])}\n`).join('')

  async function expectRefusal(t: Test, r: Refusal): Promise<DmResult> {
    const answering = r.answering ?? main
    const silent = r.silent ?? []
    const listed = [...answering, ...silent]
    const sentinel = `[{"locator":"${md5hex('nobody holds this')}+17","block_mtime":1}]`
    const before = new Map<KeepstoreProcess, { pull: ListStatus; trash: ListStatus }>()
    for (const k of listed) {
      t.equal((await call(k.direct, 'PUT', '/pull', { token: ADMIN_TOKEN, body: '[]' })).status, 200)
      t.equal((await call(k.direct, 'PUT', '/trash', { token: ADMIN_TOKEN, body: sentinel })).status, 200)
    }
    await drained(listed, 'trash')
    for (const k of listed) before.set(k, { pull: await listStatus(k, 'pull'), trash: await listStatus(k, 'trash') })
    const files = volumeFiles(roots)
    const marks = listed.map((k) => k.proxy!.requests.length)
    await r.arrange?.()
    const result = await r.run()
    await r.restore?.()

    t.equal(result.code, 1, `exit 1 (refused); stderr: ${result.stderr}`)
    t.equal(result.report?.outcome, 'refused')
    t.same(result.report?.refusals.map((x) => x.code), [r.code], `the report names ${r.code}`)
    listed.forEach((k, i) => {
      const requests = k.proxy!.requests.slice(marks[i])
      t.same(requests.filter((q) => q.method === 'PUT' && q.path === '/pull'), [], `keepstore ${k.index}: no PUT /pull`)
      t.same(requests.filter((q) => q.method === 'PUT' && q.path === '/trash' && q.body !== '[]'), [], `keepstore ${k.index}: no non-empty trash list`)
    })
    for (const k of listed) {
      const pull = await listStatus(k, 'pull')
      const trash = await listStatus(k, 'trash')
      const was = before.get(k)!
      t.same([pull.received_at, pull.digest], [was.pull.received_at, was.pull.digest], `keepstore ${k.index}: pull list untouched`)
      if (answering.includes(k)) {
        t.equal(trash.digest, EMPTY, `keepstore ${k.index} answered and received an empty trash list`)
        t.same(trash.items, [])
        t.not(trash.received_at, was.trash.received_at, `keepstore ${k.index}: the empty list replaced the sentinel`)
      } else {
        t.same([trash.received_at, trash.digest], [was.trash.received_at, was.trash.digest], `keepstore ${k.index} (silent) received nothing`)
      }
    }
    t.same(volumeFiles(roots), files, 'not one block file removed or trashed')
    return result
  }
  return { everywhere, garbage, lonely, lonelyOrder, records, expectRefusal }
}
