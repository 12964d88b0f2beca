/**
 * `npm start`: a local cluster for trying things out. Creates var/cluster.yml
 * once (fresh random tokens and key; ports from KEEP_PORT_BASE, default 25107), starts 3 keepstores (one process each,
 * logs in var/log/) and the datamanager on its period, prints a quick start
 * that works as pasted, and stops everything cleanly on Ctrl-C. When the
 * `etcd` binary is installed, a local etcd member runs too (see local-etcd.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { loadConfig } from '../shared/config.js'
import { createSigner } from '../shared/signer.js'
import { md5hex } from '../shared/hash.js'
import { runMain, untilSignal } from '../shared/cli.js'
import { ETCD_HINT, LOCAL_ETCD, ensureEtcdInConfig, findEtcdBinary, startLocalEtcd } from './local-etcd.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const varDir = path.join(repo, 'var')
const configFile = path.join(varDir, 'cluster.yml')
const collectionsFile = path.join(varDir, 'collections.jsonl')
// KEEP_PORT_BASE picks other ports when 25107-25109 are taken; it counts only when var/cluster.yml is written (the first start).
const PORT_BASE = Number(process.env.KEEP_PORT_BASE ?? 25107)
const PORTS = [PORT_BASE, PORT_BASE + 1, PORT_BASE + 2]
const SAMPLE = 'hello keep\n'

function writeConfigOnce(): void {
  if (existsSync(configFile)) return
  mkdirSync(varDir, { recursive: true })
  const secret = (): string => randomBytes(24).toString('hex')
  const doc = {
    cluster: {
      id: 'local',
      systemRootToken: secret(),
      managementToken: secret(),
      blobSigningKey: secret(),
      blobSigningTTL: '336h',
      defaultReplication: 2,
    },
    keepstores: PORTS.map((port, i) => ({
      uuid: `local-bi6l4-${String(i).padStart(15, '0')}`,
      url: `http://127.0.0.1:${port}`,
      volumes: [{ uuid: `local-nyw5e-${String(i).padStart(15, '0')}`, driver: 'directory', root: `keep${i}` }],
    })),
    datamanager: { collections: 'collections.jsonl', stateDir: 'datamanager', period: '1m' },
  }
  writeFileSync(configFile, `# Local cluster made by npm start; edit freely, delete to start over.\n${stringify(doc)}`, { mode: 0o600 })
  for (let i = 0; i < PORTS.length; i++) mkdirSync(path.join(varDir, `keep${i}`), { recursive: true })
  if (!existsSync(collectionsFile)) {
    // One sample collection: the quick start's block, wanted at 2 replicas. Add lines to reference more.
    const sample = { uuid: 'local-4zz18-000000000000001', manifest_text: `. ${md5hex(SAMPLE)}+${Buffer.byteLength(SAMPLE)} 0:${Buffer.byteLength(SAMPLE)}:hello.txt\n`, replication_desired: 2 }
    writeFileSync(collectionsFile, `${JSON.stringify(sample)}\n`)
  }
}

async function waitHealthy(url: string, token: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: keepstore exited with code ${child.exitCode} (see var/log/)`)
    try {
      const res = await fetch(`${url}/_health/ping`, { headers: { authorization: `Bearer ${token}` } })
      if (res.ok) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url}: keepstore did not become healthy in 10 s (see var/log/)`)
}

/** Starts the local etcd member when the binary is there and the config uses it; one line saying what was done. */
async function etcdFor(logDir: string): Promise<{ child: ChildProcess | undefined; note: string }> {
  const bin = findEtcdBinary()
  const added = bin !== undefined && ensureEtcdInConfig(configFile) === 'added'
  const etcd = (await loadConfig(configFile)).cluster.etcd
  if (etcd === undefined) return { child: undefined, note: ETCD_HINT }
  if (!etcd.endpoints.includes(LOCAL_ETCD.client)) return { child: undefined, note: `etcd: ${etcd.endpoints.join(', ')} (from the config)` }
  if (bin === undefined) {
    return { child: undefined, note: `etcd: the config names ${LOCAL_ETCD.client} but etcd is not installed: the datamanager cannot run (apt-get install -y etcd-server, or remove cluster.etcd from the config)` }
  }
  const child = await startLocalEtcd(bin, path.join(varDir, 'etcd'), path.join(logDir, 'etcd.log'))
  const how = added ? 'added to the config; ' : ''
  return { child, note: `etcd: one local member at ${LOCAL_ETCD.client}, data in var/etcd (${how}keepstores register there; one datamanager cluster-wide)` }
}

await runMain(async () => {
  writeConfigOnce()
  const logDir = path.join(varDir, 'log')
  mkdirSync(logDir, { recursive: true })
  const etcd = await etcdFor(logDir)
  const config = await loadConfig(configFile)
  const children: ChildProcess[] = []
  const start = (name: string, args: string[]): ChildProcess => {
    const log = openSync(path.join(logDir, `${name}.log`), 'a')
    const child = spawn(process.execPath, args, { stdio: ['ignore', log, log] })
    children.push(child)
    return child
  }
  for (const ks of config.keepstores) {
    start(ks.uuid, [path.join(repo, 'dist/bin/keepstore.js'), '--config', configFile, '--uuid', ks.uuid])
  }
  try {
    await Promise.all(config.keepstores.map((ks, i) => waitHealthy(ks.url, config.cluster.managementToken ?? '', children[i]!)))
  } catch (err) {
    for (const c of children) c.kill('SIGTERM')
    etcd.child?.kill('SIGTERM')
    throw err
  }
  const datamanagerMain = path.join(repo, 'dist/bin/datamanager.js')
  let datamanagerNote = 'datamanager: not yet available in this build'
  if (existsSync(datamanagerMain)) {
    start('datamanager', [datamanagerMain, '--config', configFile])
    datamanagerNote = `datamanager: every ${config.datamanager ? Math.round(config.datamanager.periodMs / 1000) : 60} s against var/collections.jsonl, which references the block below
           at 2 replicas: after the PUT, the next run pulls a second copy (report: var/datamanager/report.json)`
  }

  const token = config.cluster.systemRootToken
  const data = SAMPLE
  const hash = md5hex(data)
  const signer = createSigner({
    key: config.cluster.blobSigningKey ?? '',
    ttlSeconds: config.cluster.blobSigningTTLSeconds,
    maxClockSkewSeconds: config.cluster.maxClockSkewMs / 1000,
  })
  const url = config.keepstores[0]!.url
  const signed = signer.sign(`${hash}+${Buffer.byteLength(data)}`, token)
  process.stdout.write(`
Local keep cluster is up: ${config.keepstores.map((k) => k.url).join(', ')}
  config:  ${configFile}   (tokens and signing key are in it)
  data:    ${varDir}/keep0..2        logs: ${logDir}/
  ${datamanagerNote}
  ${etcd.note}

Try it (bin/keep reads var/cluster.yml; another shell, in ${repo}):
  printf 'hello keep\\n' | bin/keep put --filename hello.txt -     # prints the manifest line: . ${hash}+${Buffer.byteLength(data)} 0:${Buffer.byteLength(data)}:hello.txt
  bin/keep get ${hash}+${Buffer.byteLength(data)}
  bin/keep put README.md > /tmp/readme.txt && bin/keep get "$(cat /tmp/readme.txt)" -o /tmp/README.copy && cmp README.md /tmp/README.copy
  bin/keep status
  bin/keep pull set ${config.keepstores[1]!.uuid} examples/pull-list.json

The same with curl:
  export TOKEN=${token}
  printf 'hello keep\\n' | curl -s -X PUT --data-binary @- -H "Authorization: Bearer $TOKEN" ${url}/${hash}
  curl -s -H "Authorization: Bearer $TOKEN" ${url}/${signed}
  curl -s -H "Authorization: Bearer $TOKEN" ${url}/index

Ctrl-C stops the cluster; npm start again reuses the config and data.
`)
  const signal = await untilSignal()
  process.stdout.write(`\n${signal}: stopping…\n`)
  const stop = (c: ChildProcess): Promise<void> =>
    new Promise<void>((resolve) => {
      if (c.exitCode !== null) return resolve()
      c.once('exit', () => resolve())
      c.kill('SIGTERM')
    })
  await Promise.all(children.map(stop))
  // etcd last: the keepstores deregister on their way out.
  if (etcd.child !== undefined) await stop(etcd.child)
  return 0
})
