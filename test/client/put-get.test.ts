import { readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { scanCollections } from '../../datamanager/collections.js'
import { EMPTY_BLOCK_HASH, md5hex } from '../../shared/hash.js'
import { serviceOrder } from '../../shared/rendezvous.js'
import { KeepstoreClient } from '../../shared/keepstore-client.js'
import { writeBlock } from '../../client/block-writer.js'
import { createContext } from '../../client/context.js'
import { getData } from '../../client/get.js'
import { planRead } from '../../client/manifest.js'
import { ADMIN_TOKEN, call, startCluster, type TestCluster } from '../helpers/cluster.js'
import { liveHashes, mtimeNs, volumeFiles } from '../helpers/block-files.js'
import { runKeep, sameBytes, writeConfigFile, writeSparseFile } from '../helpers/keep-cli.js'

// Liveness only: ~300 MiB each way through real processes takes minutes on a loaded 2-core machine.
t.setTimeout(300_000)

const MiB = 1024 * 1024
const LINE_RE = /^\. ((?:[0-9a-f]{32}\+\d+ )+)0:(\d+):(\S+)$/

/** Keepstore indexes in rendezvous order for a hash. */
function order(cluster: TestCluster, hash: string): number[] {
  const uuids = cluster.config.keepstores.map((k) => k.uuid)
  return serviceOrder(hash, cluster.config.keepstores, (k) => k.uuid).map((k) => uuids.indexOf(k.uuid))
}

/** Keepstore indexes whose (one) directory volume holds the block, ascending. */
function holders(cluster: TestCluster, hash: string): number[] {
  return cluster.config.keepstores.flatMap((k, i) => (liveHashes(k.volumes[0]!.root!).has(hash) ? [i] : []))
}

const sorted = (a: number[]): number[] => [...a].sort((x, y) => x - y)

/** The block locators of one manifest line. */
function locatorsOf(line: string): string[] {
  const m = LINE_RE.exec(line)
  return m ? m[1]!.trim().split(' ') : []
}

/** Small content whose rendezvous order starts with keepstore `first`. */
function contentFirstOn(cluster: TestCluster, first: number, label: string): string {
  for (let i = 0; ; i++) {
    const text = `${label} ${i}\n`
    if (order(cluster, md5hex(text))[0] === first) return text
  }
}

t.test('put and get with 4 keepstores', async (t) => {
  const cluster = await startCluster(t, { keepstores: 4, volumes: [{ driver: 'directory' }] })
  const config = writeConfigFile(cluster.dir, cluster.doc)
  const roots = cluster.config.keepstores.map((k) => k.volumes[0]!.root!)
  const dir = cluster.dir
  // The large files go to 1 replica each (the keepstores in this process would otherwise write ~560 MiB);
  // the small ones to the cluster's default of 2.
  const files: Array<{ name: string; size: number; blocks: number[]; replicas: number }> = [
    { name: 'empty', size: 0, blocks: [], replicas: 1 },
    { name: 'block', size: 64 * MiB, blocks: [64 * MiB], replicas: 1 },
    { name: 'block-and-a-byte', size: 64 * MiB + 1, blocks: [64 * MiB, 1], replicas: 1 },
    { name: 'big', size: 150 * MiB + 12345, blocks: [64 * MiB, 64 * MiB, 22 * MiB + 12345], replicas: 1 },
    { name: 'one byte', size: 1, blocks: [1], replicas: 2 },
    { name: 'early', size: 0, blocks: [], replicas: 2 },
  ]
  files.forEach((f, seed) => f.name !== 'early' && writeSparseFile(path.join(dir, f.name), f.size, seed))
  // Read back later while its first server is down.
  const down = 3
  const early = contentFirstOn(cluster, down, 'stored before')
  writeFileSync(path.join(dir, 'early'), early)
  Object.assign(files[5]!, { size: early.length, blocks: [early.length] })
  const collection = path.join(dir, 'collections.jsonl')
  const lines = new Map<string, string>()

  await t.test('put: one manifest line per file, every block on its first N rendezvous servers, a collection record', async (t) => {
    const large = files.filter((f) => f.replicas === 1)
    const small = files.filter((f) => f.replicas === 2)
    const put = await runKeep(['--config', config, 'put', '--replicas', '1', '--collection', collection, ...large.map((f) => path.join(dir, f.name))])
    t.equal(put.code, 0, put.stderr)
    t.equal(put.stderr, '', 'quiet without a terminal')
    const put2 = await runKeep(['--config', config, 'put', ...small.map((f) => path.join(dir, f.name))])
    t.equal(put2.code, 0, put2.stderr)
    const out = put.stdout.trimEnd().split('\n')
    const out2 = put2.stdout.trimEnd().split('\n')
    t.equal(out.length + out2.length, files.length, 'one line per file')
    ;[...out, ...out2].forEach((line, i) => lines.set(files[i]!.name, line))
    for (const f of files) {
      const line = lines.get(f.name)!
      const m = LINE_RE.exec(line)
      t.ok(m, `${f.name}: manifest syntax`)
      t.equal(m?.[2], String(f.size), `${f.name}: file size`)
      t.equal(m?.[3], f.name.replace(/ /g, '\\040'), `${f.name}: escaped name`)
      const locators = locatorsOf(line)
      if (f.size === 0) {
        t.same(locators, [`${EMPTY_BLOCK_HASH}+0`], 'an empty file is the empty block, which is never stored')
        continue
      }
      t.same(locators.map((l) => Number(l.split('+')[1])), f.blocks, `${f.name}: 64 MiB blocks`)
      for (const loc of locators) {
        const hash = loc.slice(0, 32)
        t.same(holders(cluster, hash), sorted(order(cluster, hash).slice(0, f.replicas)), `${f.name}: ${loc} on its first ${f.replicas} servers only`)
      }
    }
    t.notOk(volumeFiles(roots).some((f) => path.basename(f).startsWith(EMPTY_BLOCK_HASH)), 'no empty block stored')

    const summary = await scanCollections(collection, { addCollection: () => undefined }, { defaultReplication: 2 })
    t.match(summary, { collections: 1, references: 6, malformed: 0 }, 'the datamanager reads the record: 6 block references')
    const record = JSON.parse(readFileSync(collection, 'utf8')) as Record<string, unknown>
    t.match(record, { uuid: /^zzzzz-4zz18-[a-z0-9]{15}$/, replication_desired: 1, storage_classes_desired: null })
    t.equal(record.manifest_text, `${out.join('\n')}\n`)
  })

  await t.test('get: byte for byte, to a file, to stdout, by manifest line and by locator', async (t) => {
    const big = path.join(dir, 'big.out')
    const get = await runKeep(['--config', config, 'get', lines.get('big')!, '-o', big])
    t.equal(get.code, 0, get.stderr)
    t.ok(sameBytes(path.join(dir, 'big'), big), 'big: identical')
    // The same code in process (two child processes less): exactly one block, and the empty file.
    const ctx = await createContext({ config })
    t.teardown(() => ctx.close())
    for (const name of ['block', 'empty']) {
      const target = path.join(dir, `${name}.out`)
      await getData(ctx, planRead(lines.get(name)!), { file: target, out: process.stdout, parallel: 3, progress: false })
      t.ok(sameBytes(path.join(dir, name), target), `${name}: identical`)
    }
    const piped = path.join(dir, 'block-and-a-byte.stdout')
    const toStdout = await runKeep(['--config', config, 'get', lines.get('block-and-a-byte')!], { stdoutFile: piped })
    t.equal(toStdout.code, 0, toStdout.stderr)
    t.ok(sameBytes(path.join(dir, 'block-and-a-byte'), piped), 'two blocks to stdout: identical')
    const one = await runKeep(['--config', config, 'get', locatorsOf(lines.get('one byte')!)[0]!])
    t.equal(one.code, 0, one.stderr)
    t.equal(one.stdout, readFileSync(path.join(dir, 'one byte'), 'latin1'), 'a bare locator: the block')
  })

  await t.test('put again: no new block file, every replica touched', async (t) => {
    const names = ['one byte', 'early']
    const replicas = names.flatMap((name) =>
      locatorsOf(lines.get(name)!).flatMap((loc) => holders(cluster, loc.slice(0, 32)).map((i) => path.join(roots[i]!, loc.slice(0, 3), loc.slice(0, 32)))),
    )
    t.equal(replicas.length, 4)
    const before = volumeFiles(roots)
    const mtimes = replicas.map(mtimeNs)
    const put = await runKeep(['--config', config, 'put', ...names.map((n) => path.join(dir, n))])
    t.equal(put.code, 0, put.stderr)
    t.equal(put.stdout, names.map((n) => `${lines.get(n)}\n`).join(''), 'the same manifest lines')
    t.same(volumeFiles(roots), before, 'no block file added anywhere')
    replicas.forEach((file, i) => t.ok(mtimeNs(file) > mtimes[i]!, `${path.basename(file)} on ${path.basename(path.dirname(path.dirname(file)))}: mtime refreshed`))
  })

  await t.test('a keepstore down: put goes to the next servers, get reads another replica; too few servers → exit 4', async (t) => {
    t.ok(holders(cluster, md5hex(early)).includes(down), 'a replica on the keepstore about to go down')
    await cluster.keepstores[down]!.close()

    const get = await runKeep(['--config', config, 'get', lines.get('early')!])
    t.equal(get.code, 0, get.stderr)
    t.equal(get.stdout, early, 'read from the next server in rendezvous order')

    const late = contentFirstOn(cluster, down, 'stored while down')
    writeFileSync(path.join(dir, 'late'), late)
    const put = await runKeep(['--config', config, 'put', '--filename', 'late arrival', '-'], { input: late })
    t.equal(put.code, 0, put.stderr)
    const hash = md5hex(late)
    t.equal(put.stdout, `. ${hash}+${late.length} 0:${late.length}:late\\040arrival\n`, 'stdin, named by --filename')
    t.same(holders(cluster, hash), sorted(order(cluster, hash).slice(1, 3)), 'the two next servers in rendezvous order hold it')

    const before = readFileSync(collection, 'utf8')
    const four = await runKeep(['--config', config, 'put', '--replicas', '4', '--retries', '0', '--collection', collection, path.join(dir, 'late')])
    t.equal(four.code, 4, 'exit 4: not enough replicas')
    t.match(four.stderr, /^keep: .*late: block [0-9a-f]{32}\+\d+: not enough replicas stored: 3 of 4 wanted: http:\/\/127\.0\.0\.1:\d+: connection refused\n$/)
    t.equal(four.stdout, '', 'no manifest line for a file not stored as asked')
    t.equal(readFileSync(collection, 'utf8'), before, 'no collection record either')
  })
})

/** Whether one mount's index lists the block. */
async function mountHolds(cluster: TestCluster, ks: number, volume: number, hash: string): Promise<boolean> {
  const uuid = cluster.config.keepstores[ks]!.volumes[volume]!.uuid
  const res = await call(cluster.urls[ks]!, 'GET', `/mounts/${uuid}/blocks/${hash}`, { token: ADMIN_TOKEN })
  return res.text.startsWith(hash)
}

t.test('storage classes: each next server is asked only for the classes still missing', async (t) => {
  // keepstore 0: default; 1: archive; 2: a default volume and an archive volume.
  const classes = [['default'], ['archive'], ['default', 'archive']]
  const cluster = await startCluster(t, { keepstores: 3, volumes: (i) => classes[i]!.map((c) => ({ driver: 'memory' as const, storageClasses: [c] })) })
  const config = writeConfigFile(cluster.dir, cluster.doc)
  const dir = cluster.dir
  let text = ''
  for (let i = 0; order(cluster, md5hex(text)).join() !== '0,2,1'; i++) text = `classes ${i}\n`
  const hash = md5hex(text)
  writeFileSync(path.join(dir, 'one'), text)

  const one = await runKeep(['--config', config, 'put', '--storage-classes', 'default,archive', '--replicas', '1', path.join(dir, 'one')])
  t.equal(one.code, 0, one.stderr)
  const where = async (): Promise<string> =>
    (await Promise.all([[0, 0], [1, 0], [2, 0], [2, 1]].map(async ([k, v]) => ((await mountHolds(cluster, k!, v!, hash)) ? `${k}.${v}` : '')))).filter(Boolean).join(' ')
  t.equal(await where(), '0.0 2.1', "1 replica per class: keepstore 0's default volume, then only keepstore 2's archive volume")

  // The same writer in process (one child process less): 2 per class.
  const client = new KeepstoreClient({ token: ADMIN_TOKEN })
  t.teardown(() => client.close())
  const data = Buffer.from(text)
  const two = await writeBlock(client, cluster.config.keepstores, { hash, size: data.length, data }, { replicas: 2, classes: ['default', 'archive'], retries: 0, retryDelayMs: 0 })
  t.same(two.classes, { default: 2, archive: 2 })
  t.equal(await where(), '0.0 1.0 2.0 2.1', '2 replicas per class: the third server is asked for archive only')
})
