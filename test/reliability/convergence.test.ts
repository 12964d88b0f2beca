import { createHash, randomBytes } from 'node:crypto'
import { readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { ADMIN_TOKEN, call } from '../helpers/cluster.js'
import { collection } from '../helpers/datamanager-cluster.js'
import { drained, putOn, startProcessCluster, type KeepstoreProcess } from '../helpers/process-cluster.js'
import { figure, progress, scale } from '../helpers/soak.js'

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex')

/** Runs `fn` over `items`, `width` at a time. */
async function pool<T>(items: readonly T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++
      await fn(items[i]!, i)
    }
  }))
}

/** hash → indexes of the keepstores whose index lists it. */
async function holders(keepstores: readonly KeepstoreProcess[]): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>()
  for (const k of keepstores) {
    const res = await call(k.direct, 'GET', '/index', { token: ADMIN_TOKEN })
    if (res.status !== 200 || (!res.text.endsWith('\n\n') && res.text !== '\n')) throw new Error(`index of keepstore ${k.index}: ${res.status}`)
    for (const line of res.text.split('\n')) if (line !== '') out.set(line.slice(0, 32), [...(out.get(line.slice(0, 32)) ?? []), k.index])
  }
  return out
}

t.test('convergence: a keepstore whose volume was wiped is refilled within two datamanager runs, every block back at 2 byte-identical replicas', async (t) => {
  const count = scale('blocks', 100, 1000)
  const pc = await startProcessCluster(t, { keepstores: 3 })
  const all = pc.keepstores
  const blocks = Array.from({ length: count }, (_, i) => randomBytes(256 + (i % 64) * 61))
  const locators: string[] = new Array<string>(count)
  // As a client writes: each block to its first two servers in rendezvous order.
  await pool(blocks, 8, async (data, i) => {
    const hash = md5(data)
    for (const k of pc.order(hash).slice(0, 2)) locators[i] = await putOn(k, data)
    progress('convergence: write', i + 1, count)
  })
  const records: string[] = []
  for (let i = 0; i < count; i += 10) {
    records.push(`${collection(`zzzzz-4zz18-${String(i).padStart(15, '0')}`, locators.slice(i, i + 10), { replication_desired: 2 })}\n`)
  }

  const victim = all[1]!
  t.equal(await victim.stop(), 0, 'the victim stops cleanly')
  const prefixes = (await readdir(victim.root)).filter((d) => /^[0-9a-f]{3}$/.test(d))
  await Promise.all(prefixes.map((d) => rm(path.join(victim.root, d), { recursive: true })))
  await victim.start()
  const wiped = [...(await holders(all)).values()].filter((h) => h.length < 2).length
  t.ok(wiped > 0, `${wiped} blocks lost a replica with the wipe`)

  let runs = 0
  let under = count
  while (runs < 2 && under > 0) {
    runs++
    const run = await pc.datamanager({ name: 'converge', collections: records.join('') })
    t.equal(run.code, 0, `run ${runs} commits; stderr: ${run.stderr}`)
    await drained(all, 'pull')
    const where = await holders(all)
    under = locators.filter((l) => (where.get(l.slice(0, 32))?.length ?? 0) < 2).length
    progress('convergence: runs', runs, 2)
  }

  // Every replica the indexes list is read back through GET and its bytes compared.
  const where = await holders(all)
  let lost = 0
  let underReplicated = 0
  let mismatched = 0
  await pool(locators, 8, async (locator, i) => {
    let good = 0
    for (const k of where.get(locator.slice(0, 32)) ?? []) {
      const res = await call(all[k]!.direct, 'GET', `/${pc.sign(locator)}`, { token: ADMIN_TOKEN })
      if (res.status === 200 && res.body.equals(blocks[i]!)) good++
      else mismatched++
    }
    if (good === 0) lost++
    else if (good < 2) underReplicated++
    progress('convergence: verify', i + 1, count)
  })
  t.equal(lost, 0, 'no block lost')
  t.equal(underReplicated, 0, 'every block at 2 or more replicas')
  t.equal(mismatched, 0, 'every listed replica is byte-identical')
  t.ok(runs <= 2, `converged in ${runs} run(s)`)
  figure(t, 'convergence', { blocks: count, runs, lost, under_replicated: underReplicated })
})
