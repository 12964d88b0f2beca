import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startCluster, call, ADMIN_TOKEN, MANAGEMENT_TOKEN, SIGNING_KEY, freePorts } from '../helpers/cluster.js'
import { parseConfig } from '../../shared/config.js'
import { createLogger } from '../../shared/logger.js'
import { createSigner } from '../../shared/signer.js'
import { startKeepstore } from '../../keepstore/server.js'

const md5 = (b: string | Buffer): string => createHash('md5').update(b).digest('hex')
const block = (s: string): { data: string; hash: string; locator: string } => ({ data: s, hash: md5(s), locator: `${md5(s)}+${Buffer.byteLength(s)}` })
const signer = createSigner({ key: SIGNING_KEY, ttlSeconds: 336 * 3600, maxClockSkewSeconds: 600 })

async function put(url: string, data: string): Promise<void> {
  const res = await call(url, 'PUT', `/${md5(data)}`, { body: data })
  if (res.status !== 200) throw new Error(`PUT failed: ${res.status} ${res.text}`)
}

async function pullStatus(url: string): Promise<{ failed: number; done: number; queued: number; in_progress: number }> {
  return JSON.parse((await call(url, 'GET', '/pull', { token: ADMIN_TOKEN })).text) as { failed: number; done: number; queued: number; in_progress: number }
}

/** A small block: its whole body has arrived (unread) by the time the write fails. */
const big = block('pulled bytes')

t.test('pull, as Keep ignores an item for a read-only mount: the list is accepted, the item fails with its reason (log, /status, metrics), the keepstore keeps serving', async (t) => {
  const logs: object[] = []
  const cluster = await startCluster(t, { keepstores: 2, volumes: [{ driver: 'directory' }, { driver: 'directory', readOnly: true }], logs })
  const [a, b] = cluster.urls as [string, string]
  await put(a, big.data)
  const readOnlyMount = cluster.config.keepstores[1]!.volumes[1]!.uuid
  const list = JSON.stringify([{ locator: big.locator, servers: [a], mount_uuid: readOnlyMount }])
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: list })).status, 200, 'accepted with the list')
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.match(await pullStatus(b), { failed: 1, done: 0, queued: 0, in_progress: 0 })
  const failed = logs.find((l) => (l as { msg?: string }).msg === 'item failed') as { err?: { code?: string } } | undefined
  t.equal(failed?.err?.code, 'KEEP_READ_ONLY', 'the reason is logged')
  const status = JSON.parse((await call(b, 'GET', '/status', { token: ADMIN_TOKEN })).text) as { pull: { failed: number } }
  t.equal(status.pull.failed, 1, '/status counts it')
  const metrics = (await call(b, 'GET', '/metrics', { token: MANAGEMENT_TOKEN })).text
  t.match(metrics, /keepstore_worklist_failures_total\{list="pull",reason="KEEP_READ_ONLY"\} 1\n/, 'metrics count it by reason')
  t.notMatch(metrics, /keepstore_pull_failures_total\{/, 'no source server was asked')
  await put(b, 'still serving')
  const get = await call(b, 'GET', `/${signer.sign(block('still serving').locator, 'x')}`, { token: 'x' })
  t.equal(get.status, 200, 'the keepstore still serves')
})

t.test('pull: a write that fails on disk (a file where the block directory should be) fails the item, nothing crashes', async (t) => {
  const cluster = await startCluster(t, { keepstores: 2, volumes: [{ driver: 'directory' }] })
  const [a, b] = cluster.urls as [string, string]
  await put(a, big.data)
  const root = cluster.config.keepstores[1]!.volumes[0]!.root!
  await writeFile(path.join(root, big.hash.slice(0, 3)), 'not a directory')
  const list = JSON.stringify([{ locator: big.locator, servers: [a] }])
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: list })).status, 200)
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.match(await pullStatus(b), { failed: 1, done: 0 })
  t.equal((await call(b, 'GET', '/_health/ping', { token: MANAGEMENT_TOKEN })).status, 200, 'still answering')
})

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

function spawnKeepstore(config: string, uuid: string): { child: ChildProcess; exit: Promise<number | null>; stderr: () => string } {
  // Without tap's NODE_OPTIONS: its loaders are for test files, not for the program under test.
  const child = spawn(process.execPath, [path.join(repo, 'bin/keepstore'), '--config', config, '--uuid', uuid], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, exit, stderr: () => stderr }
}

/** Polls until `check` holds, the child exits (a failure) or 10 s pass. */
async function until(child: ChildProcess, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`keepstore exited (${child.exitCode ?? child.signalCode})`)
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error('not within 10 s')
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('pull: a child keepstore whose pull write fails stays alive and serves', async (t) => {
  const dir = t.testdir({})
  const ports = await freePorts(2)
  const doc = {
    cluster: { id: 'zzzzz', systemRootToken: ADMIN_TOKEN, managementToken: MANAGEMENT_TOKEN, blobSigningKey: SIGNING_KEY },
    keepstores: ports.map((port, i) => ({
      uuid: `zzzzz-bi6l4-00000000000000${i}`,
      url: `http://127.0.0.1:${port}`,
      stateDir: `state${i}`,
      volumes: [{ uuid: `zzzzz-nyw5e-00000000000000${i}`, driver: 'directory', root: `disk${i}`, readOnly: i === 1 }],
    })),
  }
  const file = path.join(dir, 'cluster.json')
  await writeFile(file, JSON.stringify(doc))
  for (const i of [0, 1]) await mkdir(path.join(dir, `disk${i}`))
  const source = await startKeepstore(parseConfig(JSON.stringify(doc), { baseDir: dir }), { uuid: doc.keepstores[0]!.uuid, logger: createLogger({ level: 'silent' }), shutdownGraceMs: 1000 })
  t.teardown(() => source.close())
  const [a, b] = [source.url, doc.keepstores[1]!.url]
  await put(a, big.data)
  const { child, exit, stderr } = spawnKeepstore(file, doc.keepstores[1]!.uuid)
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  await until(child, async () => (await call(b, 'GET', '/_health/ping', { token: MANAGEMENT_TOKEN })).status === 200)
  const list = JSON.stringify([{ locator: big.locator, servers: [a], mount_uuid: doc.keepstores[1]!.volumes[0]!.uuid }])
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: list })).status, 200, 'accepted with the list')
  await until(child, async () => (await pullStatus(b)).failed === 1)
  const get = await call(b, 'GET', '/index', { token: ADMIN_TOKEN }).catch((err: unknown) => ({ status: String(err) }))
  t.equal(get.status, 200, `still serving ${stderr()}`)
  t.equal(child.exitCode, null, 'still running')
  child.kill('SIGTERM')
  t.equal(await exit, 0, 'a clean exit on SIGTERM')
})
