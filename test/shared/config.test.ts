import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import {
  keepstoreByOrigin,
  loadConfig,
  parseConfig,
  requireDatamanager,
  selectKeepstore,
  type Config,
} from '../../shared/config.js'

/** tap matches a string `message` as a substring; the message is the contract here, so match the whole line. */
function exactly(code: string, message: string): { code: string; message: RegExp } {
  return { code, message: new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }
}

const ROOT_TOKEN = 'r'.repeat(32)
const SIGNING_KEY = 'k'.repeat(32)
const BASE = '/etc/keep'

type Doc = Record<string, any>

/** The smallest valid file: one keepstore with one directory volume. */
function minimal(): Doc {
  return {
    cluster: { id: 'zzzzz', systemRootToken: ROOT_TOKEN, blobSigningKey: SIGNING_KEY },
    keepstores: [
      {
        uuid: 'zzzzz-bi6l4-000000000000000',
        url: 'http://127.0.0.1:25107',
        volumes: [{ uuid: 'zzzzz-nyw5e-000000000000000', root: 'disk0' }],
      },
    ],
  }
}

function secondKeepstore(doc: Doc, extra: Doc = {}): void {
  doc.keepstores.push({
    uuid: 'zzzzz-bi6l4-000000000000001',
    url: 'http://127.0.0.1:25108',
    volumes: [{ uuid: 'zzzzz-nyw5e-000000000000001', driver: 'memory' }],
    ...extra,
  })
}

function parse(doc: Doc): Config {
  return parseConfig(JSON.stringify(doc), { baseDir: BASE })
}

t.test('a minimal file gets every documented default', async (t) => {
  const config = parseConfig(JSON.stringify(minimal()), { path: '/etc/keep/cluster.yml' })
  t.same(config, {
    path: '/etc/keep/cluster.yml',
    cluster: {
      id: 'zzzzz',
      systemRootToken: ROOT_TOKEN,
      managementToken: undefined,
      blobSigning: true,
      blobSigningKey: SIGNING_KEY,
      blobSigningTTLSeconds: 336 * 3600,
      maxClockSkewMs: 10 * 60_000,
      blobTrash: true,
      blobTrashLifetimeMs: 336 * 3_600_000,
      blobTrashCheckIntervalMs: 24 * 3_600_000,
      defaultReplication: 2,
      etcd: undefined,
    },
    keepstores: [
      {
        uuid: 'zzzzz-bi6l4-000000000000000',
        url: 'http://127.0.0.1:25107',
        origin: 'http://127.0.0.1:25107',
        listen: { host: '127.0.0.1', port: 25107 },
        tls: undefined,
        maxConcurrentRequests: 64,
        maxConcurrentWrites: 16,
        stateDir: '/etc/keep/disk0/.keep-state',
        pullConcurrency: 4,
        trashConcurrency: 1,
        headerTimeoutMs: 60_000,
        requestTimeoutMs: 300_000,
        bodyIdleTimeoutMs: 30_000,
        scrubRate: 0,
        minFreeSpace: 64 * 1024 * 1024,
        indexRescanIntervalMs: 24 * 3_600_000,
        volumes: [
          {
            uuid: 'zzzzz-nyw5e-000000000000000',
            driver: 'directory',
            root: '/etc/keep/disk0',
            readOnly: false,
            allowTrashWhenReadOnly: false,
            replication: 1,
            storageClasses: ['default'],
            priority: 0,
          },
        ],
      },
    ],
    datamanager: undefined,
  })
})

type Pick = (c: Config) => unknown
const valid: Array<{ name: string; edit: (d: Doc) => void; pick: Pick; want: unknown }> = [
  {
    name: 'durations in Go grammar',
    edit: (d) => Object.assign(d.cluster, { blobSigningTTL: '1h30m', maxClockSkew: '90s', blobTrashLifetime: '0', blobTrashCheckInterval: '1.5h' }),
    pick: (c) => [c.cluster.blobSigningTTLSeconds, c.cluster.maxClockSkewMs, c.cluster.blobTrashLifetimeMs, c.cluster.blobTrashCheckIntervalMs],
    want: [5400, 90_000, 0, 5_400_000],
  },
  {
    name: 'durations as numbers of seconds',
    edit: (d) => Object.assign(d.cluster, { blobSigningTTL: 3600, maxClockSkew: 0.5 }),
    pick: (c) => [c.cluster.blobSigningTTLSeconds, c.cluster.maxClockSkewMs],
    want: [3600, 500],
  },
  {
    name: 'keepstore tunables',
    edit: (d) =>
      Object.assign(d.keepstores[0], {
        maxConcurrentRequests: 8, pullConcurrency: 2, trashConcurrency: 3,
        headerTimeout: '5s', requestTimeout: 0, minFreeSpace: '1GiB',
        maxConcurrentWrites: 4, bodyIdleTimeout: '2s', scrubRate: 12.5, indexRescanInterval: '1h30m',
      }),
    pick: (c) => {
      const ks = selectKeepstore(c)
      return [ks.maxConcurrentRequests, ks.pullConcurrency, ks.trashConcurrency, ks.headerTimeoutMs, ks.requestTimeoutMs, ks.minFreeSpace, ks.maxConcurrentWrites, ks.bodyIdleTimeoutMs, ks.scrubRate, ks.indexRescanIntervalMs]
    },
    want: [8, 2, 3, 5000, 0, 1024 ** 3, 4, 2000, 12.5, 5_400_000],
  },
  {
    name: 'listen given explicitly',
    edit: (d) => (d.keepstores[0].listen = '0.0.0.0:9000'),
    pick: (c) => selectKeepstore(c).listen,
    want: { host: '0.0.0.0', port: 9000 },
  },
  {
    name: 'listen on all interfaces',
    edit: (d) => (d.keepstores[0].listen = ':9000'),
    pick: (c) => selectKeepstore(c).listen,
    want: { host: '0.0.0.0', port: 9000 },
  },
  {
    name: 'listen on IPv6',
    edit: (d) => (d.keepstores[0].listen = '[::1]:9000'),
    pick: (c) => selectKeepstore(c).listen,
    want: { host: '::1', port: 9000 },
  },
  {
    name: 'listen from an IPv6 url',
    edit: (d) => (d.keepstores[0].url = 'http://[::1]:25107/'),
    pick: (c) => [selectKeepstore(c).listen, selectKeepstore(c).url, selectKeepstore(c).origin],
    want: [{ host: '::1', port: 25107 }, 'http://[::1]:25107/', 'http://[::1]:25107'],
  },
  {
    name: 'listen from an https url without a port, with tls files resolved',
    edit: (d) => Object.assign(d.keepstores[0], { url: 'https://keep0.example', tls: { certificate: 'tls/cert.pem', key: '/secret/key.pem' } }),
    pick: (c) => [selectKeepstore(c).listen, selectKeepstore(c).tls],
    want: [{ host: 'keep0.example', port: 443 }, { certificate: '/etc/keep/tls/cert.pem', key: '/secret/key.pem' }],
  },
  {
    name: 'an explicit stateDir, resolved',
    edit: (d) => (d.keepstores[0].stateDir = '../state'),
    pick: (c) => selectKeepstore(c).stateDir,
    want: '/etc/state',
  },
  {
    name: 'stateDir under the first directory volume',
    edit: (d) => d.keepstores[0].volumes.unshift({ uuid: 'zzzzz-nyw5e-00000000000000a', driver: 'memory' }, { uuid: 'zzzzz-nyw5e-00000000000000b', root: '/disk1' }),
    pick: (c) => selectKeepstore(c).stateDir,
    want: '/disk1/.keep-state',
  },
  {
    name: 'no stateDir when every volume is memory',
    edit: (d) => (d.keepstores[0].volumes = [{ uuid: 'zzzzz-nyw5e-00000000000000a', driver: 'memory' }]),
    pick: (c) => [selectKeepstore(c).stateDir, selectKeepstore(c).volumes[0]?.root],
    want: [undefined, undefined],
  },
  {
    name: 'volume settings',
    edit: (d) => Object.assign(d.keepstores[0].volumes[0], { readOnly: true, allowTrashWhenReadOnly: true, replication: 2, storageClasses: ['hot', 'cold'], priority: -1 }),
    pick: (c) => {
      const { readOnly, allowTrashWhenReadOnly, replication, storageClasses, priority } = selectKeepstore(c).volumes[0]!
      return { readOnly, allowTrashWhenReadOnly, replication, storageClasses, priority }
    },
    want: { readOnly: true, allowTrashWhenReadOnly: true, replication: 2, storageClasses: ['hot', 'cold'], priority: -1 },
  },
  {
    name: 'signing off without a key, tokens and trash settings',
    edit: (d) => {
      delete d.cluster.blobSigningKey
      Object.assign(d.cluster, { blobSigning: false, blobTrash: false, managementToken: 'm', defaultReplication: 3 })
    },
    pick: (c) => [c.cluster.blobSigning, c.cluster.blobSigningKey, c.cluster.blobTrash, c.cluster.managementToken, c.cluster.defaultReplication],
    want: [false, undefined, false, 'm', 3],
  },
  {
    name: 'the same root on two hosts',
    edit: (d) => secondKeepstore(d, { url: 'http://10.0.0.2:25107', volumes: [{ uuid: 'zzzzz-nyw5e-000000000000002', root: 'disk0' }] }),
    pick: (c) => c.keepstores.map((ks) => ks.volumes[0]?.root),
    want: ['/etc/keep/disk0', '/etc/keep/disk0'],
  },
  {
    name: 'a datamanager with defaults',
    edit: (d) => (d.datamanager = { collections: 'collections.jsonl', stateDir: '/var/lib/keep/dm' }),
    pick: (c) => requireDatamanager(c),
    want: {
      collections: '/etc/keep/collections.jsonl',
      periodMs: 600_000,
      pullLimit: 100_000,
      trashLimit: 100_000,
      stateDir: '/var/lib/keep/dm',
      lostBlocksFile: '/var/lib/keep/dm/lost-blocks.txt',
      reportFile: '/var/lib/keep/dm/report.json',
      listen: undefined,
      runTimeoutMs: 6 * 3_600_000,
      maxRecordBytes: 256 * 1024 * 1024,
      membershipSettleMs: 30_000,
    },
  },
  {
    name: 'a datamanager with everything set',
    edit: (d) =>
      (d.datamanager = {
        collections: '/c', period: '1h', pullLimit: 5, trashLimit: 0, stateDir: 'dm',
        lostBlocksFile: 'lost.txt', reportFile: '/r.json', listen: '127.0.0.1:25110',
        runTimeout: '30m', maxRecordBytes: '1MiB', membershipSettle: '5s',
      }),
    pick: (c) => requireDatamanager(c),
    want: {
      collections: '/c', periodMs: 3_600_000, pullLimit: 5, trashLimit: 0, stateDir: '/etc/keep/dm',
      lostBlocksFile: '/etc/keep/lost.txt', reportFile: '/r.json', listen: { host: '127.0.0.1', port: 25110 },
      runTimeoutMs: 1_800_000, maxRecordBytes: 1024 * 1024, membershipSettleMs: 5000,
    },
  },
  {
    name: 'etcd with defaults: prefix from the cluster id, 10 s leases',
    edit: (d) => (d.cluster.etcd = { endpoints: ['http://127.0.0.1:2379'] }),
    pick: (c) => c.cluster.etcd,
    want: { endpoints: ['http://127.0.0.1:2379'], prefix: '/keep/zzzzz/', leaseTTLSeconds: 10 },
  },
  {
    name: 'etcd with everything set',
    edit: (d) => (d.cluster.etcd = { endpoints: ['http://etcd0:2379', 'https://etcd1:2379'], prefix: '/', leaseTTL: '3s' }),
    pick: (c) => c.cluster.etcd,
    want: { endpoints: ['http://etcd0:2379', 'https://etcd1:2379'], prefix: '/', leaseTTLSeconds: 3 },
  },
  {
    name: 'membershipSettle 0: a run as soon as the membership changes',
    edit: (d) => (d.datamanager = { collections: '/c', stateDir: '/dm', membershipSettle: 0 }),
    pick: (c) => requireDatamanager(c).membershipSettleMs,
    want: 0,
  },
]

t.test('valid files parse to these values', async (t) => {
  for (const { name, edit, pick, want } of valid) {
    const doc = minimal()
    edit(doc)
    t.same(pick(parse(doc)), want, name)
  }
})

t.test('YAML with comments, durations as scalars and empty values as absent', async (t) => {
  const text = `# the whole cluster
cluster:
  id: abc12
  systemRootToken: "${ROOT_TOKEN}"
  managementToken:          # empty: disabled
  blobSigningKey: ${SIGNING_KEY}
  blobSigningTTL: 336h
  maxClockSkew: 10m
  blobTrashLifetime: 0
keepstores:
  - uuid: abc12-bi6l4-000000000000000
    url: http://keep0:25107
    listen: 0.0.0.0:25107
    minFreeSpace: 10MB
    volumes:
      - { uuid: abc12-nyw5e-000000000000000, driver: memory, storageClasses: [default, archive] }
`
  const config = parseConfig(text, { baseDir: BASE })
  t.equal(config.cluster.id, 'abc12')
  t.equal(config.cluster.managementToken, undefined)
  t.equal(config.cluster.blobSigningTTLSeconds, 1_209_600)
  t.equal(config.cluster.blobTrashLifetimeMs, 0)
  t.same(config.keepstores[0]?.listen, { host: '0.0.0.0', port: 25107 })
  t.equal(config.keepstores[0]?.minFreeSpace, 10_000_000)
  t.same(config.keepstores[0]?.volumes[0]?.storageClasses, ['default', 'archive'])
})

const NOT_UUID = (got: string): string => `must be an Arvados-style uuid, 5-5-15 lowercase letters or digits like zzzzz-nyw5e-000000000000000 (got ${got})`

const invalid: Array<{ edit: (d: Doc) => void; message: string }> = [
  { edit: (d) => (d.bogus = 1), message: 'config: bogus: unknown key' },
  { edit: (d) => (d.cluster.bogus = 1), message: 'config: cluster.bogus: unknown key' },
  { edit: (d) => (d.cluster['blob signing'] = 1), message: 'config: cluster["blob signing"]: unknown key' },
  { edit: (d) => (d.keepstores[0].volumes[0].Root = 'x'), message: 'config: keepstores[0].volumes[0].Root: unknown key' },
  { edit: (d) => delete d.cluster, message: 'config: cluster: required' },
  { edit: (d) => (d.cluster = []), message: 'config: cluster: must be a mapping' },
  { edit: (d) => delete d.cluster.id, message: 'config: cluster.id: required' },
  { edit: (d) => (d.cluster.id = 'ZZZZZ'), message: 'config: cluster.id: must be 5 lowercase letters or digits' },
  { edit: (d) => (d.cluster.id = 'zzzz'), message: 'config: cluster.id: must be 5 lowercase letters or digits' },
  { edit: (d) => (d.cluster.id = 12345), message: 'config: cluster.id: must be a string' },
  { edit: (d) => delete d.cluster.systemRootToken, message: 'config: cluster.systemRootToken: required' },
  { edit: (d) => (d.cluster.systemRootToken = 'short'), message: 'config: cluster.systemRootToken: must be at least 32 characters' },
  { edit: (d) => (d.cluster.managementToken = ''), message: 'config: cluster.managementToken: must not be empty' },
  { edit: (d) => (d.cluster.blobSigning = 'yes'), message: 'config: cluster.blobSigning: must be true or false' },
  { edit: (d) => delete d.cluster.blobSigningKey, message: 'config: cluster.blobSigningKey: required when blobSigning is true' },
  { edit: (d) => (d.cluster.blobSigningKey = 'k'.repeat(31)), message: 'config: cluster.blobSigningKey: must be at least 32 characters' },
  { edit: (d) => (d.cluster.blobSigningTTL = '1500ms'), message: 'config: cluster.blobSigningTTL: must be whole seconds ≥ 1s' },
  { edit: (d) => (d.cluster.blobSigningTTL = 0), message: 'config: cluster.blobSigningTTL: must be whole seconds ≥ 1s' },
  { edit: (d) => (d.cluster.blobSigningTTL = '2w'), message: 'config: cluster.blobSigningTTL: unknown unit "w" in duration "2w"' },
  { edit: (d) => (d.cluster.maxClockSkew = true), message: 'config: cluster.maxClockSkew: must be a duration like 336h, 10m, 2s, 500ms or a number of seconds' },
  { edit: (d) => (d.cluster.blobTrashLifetime = '-1h'), message: 'config: cluster.blobTrashLifetime: must not be negative (got "-1h")' },
  { edit: (d) => (d.cluster.blobTrashCheckInterval = 0), message: 'config: cluster.blobTrashCheckInterval: must be > 0' },
  { edit: (d) => (d.cluster.defaultReplication = 0), message: 'config: cluster.defaultReplication: must be an integer ≥ 1' },
  { edit: (d) => (d.cluster.defaultReplication = 1.5), message: 'config: cluster.defaultReplication: must be an integer ≥ 1' },
  { edit: (d) => delete d.keepstores, message: 'config: keepstores: required' },
  { edit: (d) => (d.keepstores = []), message: 'config: keepstores: must list at least one keepstore' },
  { edit: (d) => (d.keepstores = {}), message: 'config: keepstores: must be a list' },
  { edit: (d) => (d.keepstores[0] = 'keep0'), message: 'config: keepstores[0]: must be a mapping' },
  { edit: (d) => (d.keepstores[0].uuid = ''), message: `config: keepstores[0].uuid: ${NOT_UUID('""')}` },
  { edit: (d) => (d.keepstores[0].uuid = 'keep0'), message: `config: keepstores[0].uuid: ${NOT_UUID('"keep0"')}` },
  { edit: (d) => (d.keepstores[0].uuid = 'zzzzz-bi6l4-00000000000000'), message: `config: keepstores[0].uuid: ${NOT_UUID('"zzzzz-bi6l4-00000000000000"')}` },
  { edit: (d) => (d.keepstores[0].uuid = 'zzzzz-bi6l4-0000000000000000'), message: `config: keepstores[0].uuid: ${NOT_UUID('"zzzzz-bi6l4-0000000000000000"')}` },
  { edit: (d) => (d.keepstores[0].uuid = 'zzzzz-BI6L4-000000000000000'), message: `config: keepstores[0].uuid: ${NOT_UUID('"zzzzz-BI6L4-000000000000000"')}` },
  { edit: (d) => (d.keepstores[0].uuid = 'zzzzz_bi6l4_000000000000000'), message: `config: keepstores[0].uuid: ${NOT_UUID('"zzzzz_bi6l4_000000000000000"')}` },
  { edit: (d) => (d.keepstores[0].volumes[0].uuid = 'v0'), message: `config: keepstores[0].volumes[0].uuid: ${NOT_UUID('"v0"')}` },
  { edit: (d) => (d.keepstores[0].volumes[0].uuid = ' zzzzz-nyw5e-000000000000000'), message: `config: keepstores[0].volumes[0].uuid: ${NOT_UUID('" zzzzz-nyw5e-000000000000000"')}` },
  { edit: (d) => (d.keepstores[0].volumes[0].allowTrashWhenReadOnly = 1), message: 'config: keepstores[0].volumes[0].allowTrashWhenReadOnly: must be true or false' },
  { edit: (d) => delete d.keepstores[0].url, message: 'config: keepstores[0].url: required' },
  { edit: (d) => (d.keepstores[0].url = 'keep0:25107'), message: 'config: keepstores[0].url: must be an http:// or https:// URL (got "keep0:25107")' },
  { edit: (d) => (d.keepstores[0].url = 'ftp://keep0'), message: 'config: keepstores[0].url: must be an http:// or https:// URL (got "ftp://keep0")' },
  {
    edit: (d) => (d.keepstores[0].url = 'http://keep0:25107/keep'),
    message: 'config: keepstores[0].url: must be scheme://host:port only, without path, query, fragment or credentials (got "http://keep0:25107/keep")',
  },
  { edit: (d) => (d.keepstores[0].listen = 25107), message: 'config: keepstores[0].listen: must be a string' },
  { edit: (d) => (d.keepstores[0].listen = 'keep0'), message: 'config: keepstores[0].listen: must be host:port, e.g. 0.0.0.0:25107 (got "keep0")' },
  { edit: (d) => (d.keepstores[0].listen = ':65536'), message: 'config: keepstores[0].listen: must be host:port, e.g. 0.0.0.0:25107 (got ":65536")' },
  { edit: (d) => (d.keepstores[0].tls = { certificate: 'c.pem' }), message: 'config: keepstores[0].tls.key: required' },
  { edit: (d) => (d.keepstores[0].tls = { certificate: 'c.pem', key: 'k.pem' }), message: 'config: keepstores[0].url: must be https:// when tls is set' },
  { edit: (d) => (d.keepstores[0].maxConcurrentRequests = 0), message: 'config: keepstores[0].maxConcurrentRequests: must be an integer ≥ 1' },
  { edit: (d) => (d.keepstores[0].pullConcurrency = 0), message: 'config: keepstores[0].pullConcurrency: must be an integer ≥ 1' },
  { edit: (d) => (d.keepstores[0].trashConcurrency = '2'), message: 'config: keepstores[0].trashConcurrency: must be a number' },
  { edit: (d) => (d.keepstores[0].headerTimeout = '1 minute'), message: 'config: keepstores[0].headerTimeout: unknown unit " minute" in duration "1 minute"' },
  { edit: (d) => (d.keepstores[0].minFreeSpace = '64M'), message: 'config: keepstores[0].minFreeSpace: unknown unit "M" in size "64M" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)' },
  { edit: (d) => (d.keepstores[0].stateDir = ''), message: 'config: keepstores[0].stateDir: must not be empty' },
  { edit: (d) => delete d.keepstores[0].volumes, message: 'config: keepstores[0].volumes: required' },
  { edit: (d) => (d.keepstores[0].volumes = []), message: 'config: keepstores[0].volumes: must list at least one volume' },
  { edit: (d) => d.keepstores[0].volumes.push({ uuid: 'zzzzz-nyw5e-000000000000001' }), message: 'config: keepstores[0].volumes[1].root: required' },
  { edit: (d) => delete d.keepstores[0].volumes[0].uuid, message: 'config: keepstores[0].volumes[0].uuid: required' },
  { edit: (d) => (d.keepstores[0].volumes[0].driver = 's3'), message: 'config: keepstores[0].volumes[0].driver: must be one of directory, memory' },
  { edit: (d) => (d.keepstores[0].volumes[0].driver = 'memory'), message: 'config: keepstores[0].volumes[0].root: only for the directory driver' },
  { edit: (d) => (d.keepstores[0].volumes[0].readOnly = 'no'), message: 'config: keepstores[0].volumes[0].readOnly: must be true or false' },
  { edit: (d) => (d.keepstores[0].volumes[0].replication = 0), message: 'config: keepstores[0].volumes[0].replication: must be an integer ≥ 1' },
  { edit: (d) => (d.keepstores[0].volumes[0].storageClasses = []), message: 'config: keepstores[0].volumes[0].storageClasses: must list at least one class' },
  { edit: (d) => (d.keepstores[0].volumes[0].storageClasses = 'default'), message: 'config: keepstores[0].volumes[0].storageClasses: must be a list' },
  { edit: (d) => (d.keepstores[0].volumes[0].storageClasses = ['a', '']), message: 'config: keepstores[0].volumes[0].storageClasses[1]: must not be empty' },
  { edit: (d) => (d.keepstores[0].volumes[0].storageClasses = ['a', 'b', 'a']), message: 'config: keepstores[0].volumes[0].storageClasses[2]: duplicate "a"' },
  { edit: (d) => (d.keepstores[0].volumes[0].priority = 0.5), message: 'config: keepstores[0].volumes[0].priority: must be an integer' },
  {
    edit: (d) => secondKeepstore(d, { uuid: 'zzzzz-bi6l4-000000000000000' }),
    message: 'config: keepstores[1].uuid: duplicate "zzzzz-bi6l4-000000000000000" (also keepstores[0].uuid)',
  },
  {
    edit: (d) => secondKeepstore(d, { url: 'http://127.0.0.1:25107/' }),
    message: 'config: keepstores[1].url: duplicate "http://127.0.0.1:25107" (also keepstores[0].url)',
  },
  {
    edit: (d) => secondKeepstore(d, { url: 'HTTP://127.0.0.1:25107' }),
    message: 'config: keepstores[1].url: duplicate "http://127.0.0.1:25107" (also keepstores[0].url)',
  },
  {
    edit: (d) => secondKeepstore(d, { volumes: [{ uuid: 'zzzzz-nyw5e-000000000000000', driver: 'memory' }] }),
    message: 'config: keepstores[1].volumes[0].uuid: duplicate "zzzzz-nyw5e-000000000000000" (also keepstores[0].volumes[0].uuid)',
  },
  {
    edit: (d) => d.keepstores[0].volumes.push({ uuid: 'zzzzz-nyw5e-000000000000001', root: '/etc/keep/disk0/' }),
    message: 'config: keepstores[0].volumes[1].root: duplicate "/etc/keep/disk0" (also keepstores[0].volumes[0].root)',
  },
  {
    edit: (d) => secondKeepstore(d, { volumes: [{ uuid: 'zzzzz-nyw5e-000000000000001', root: './sub/../disk0' }] }),
    message: 'config: keepstores[1].volumes[0].root: duplicate "/etc/keep/disk0" (also keepstores[0].volumes[0].root)',
  },
  { edit: (d) => (d.datamanager = { stateDir: '/dm' }), message: 'config: datamanager.collections: required' },
  { edit: (d) => (d.datamanager = { collections: '/c' }), message: 'config: datamanager.stateDir: required' },
  { edit: (d) => (d.datamanager = { collections: '/c', stateDir: '/dm', period: 0 }), message: 'config: datamanager.period: must be > 0' },
  { edit: (d) => (d.datamanager = { collections: '/c', stateDir: '/dm', pullLimit: -1 }), message: 'config: datamanager.pullLimit: must be an integer ≥ 0' },
  { edit: (d) => (d.datamanager = { collections: '/c', stateDir: '/dm', period: '10m', dryRun: true }), message: 'config: datamanager.dryRun: unknown key' },
  { edit: (d) => (d.datamanager = { collections: '/c', stateDir: '/dm', runTimeout: 0 }), message: 'config: datamanager.runTimeout: must be > 0' },
  { edit: (d) => (d.datamanager = { collections: '/c', stateDir: '/dm', maxRecordBytes: 1023 }), message: 'config: datamanager.maxRecordBytes: must be between 1KiB and 512MiB' },
  { edit: (d) => (d.datamanager = { collections: '/c', stateDir: '/dm', maxRecordBytes: '513MiB' }), message: 'config: datamanager.maxRecordBytes: must be between 1KiB and 512MiB' },
  { edit: (d) => (d.cluster.etcd = {}), message: 'config: cluster.etcd.endpoints: required' },
  { edit: (d) => (d.cluster.etcd = { endpoints: [] }), message: 'config: cluster.etcd.endpoints: must list at least one endpoint' },
  { edit: (d) => (d.cluster.etcd = { endpoints: ['127.0.0.1:2379'] }), message: 'config: cluster.etcd.endpoints[0]: must be an http:// or https:// URL (got "127.0.0.1:2379")' },
  { edit: (d) => (d.cluster.etcd = { endpoints: ['http://e:2379'], prefix: 'keep/' }), message: 'config: cluster.etcd.prefix: must start and end with / (e.g. /keep/zzzzz/)' },
  { edit: (d) => (d.cluster.etcd = { endpoints: ['http://e:2379'], prefix: '/keep' }), message: 'config: cluster.etcd.prefix: must start and end with / (e.g. /keep/zzzzz/)' },
  { edit: (d) => (d.cluster.etcd = { endpoints: ['http://e:2379'], leaseTTL: '500ms' }), message: 'config: cluster.etcd.leaseTTL: must be whole seconds ≥ 1s' },
  { edit: (d) => (d.cluster.etcd = { endpoints: ['http://e:2379'], ttl: '5s' }), message: 'config: cluster.etcd.ttl: unknown key' },
  { edit: (d) => (d.datamanager = { collections: '/c', stateDir: '/dm', membershipSettle: '-1s' }), message: 'config: datamanager.membershipSettle: must not be negative (got "-1s")' },
  { edit: (d) => (d.keepstores[0].maxConcurrentWrites = 0), message: 'config: keepstores[0].maxConcurrentWrites: must be an integer ≥ 1' },
  { edit: (d) => (d.keepstores[0].bodyIdleTimeout = 0), message: 'config: keepstores[0].bodyIdleTimeout: must be > 0' },
  { edit: (d) => (d.keepstores[0].scrubRate = -1), message: 'config: keepstores[0].scrubRate: must be ≥ 0 (0 = off)' },
  { edit: (d) => (d.keepstores[0].scrubRate = '5MB'), message: 'config: keepstores[0].scrubRate: must be a number of MB/s (0 = off)' },
  { edit: (d) => (d.keepstores[0].indexRescanInterval = '1d'), message: 'config: keepstores[0].indexRescanInterval: unknown unit "d" in duration "1d"' },
]

t.test('invalid files fail with KEEP_CONFIG and one line naming the key', async (t) => {
  for (const { edit, message } of invalid) {
    const doc = minimal()
    edit(doc)
    t.throws(() => parse(doc), exactly('KEEP_CONFIG', message), message)
  }
})

t.test('an unknown key is reported before the required key it misspells', async (t) => {
  const doc = minimal()
  doc.cluster.systemRootTokn = doc.cluster.systemRootToken
  delete doc.cluster.systemRootToken
  t.throws(() => parse(doc), exactly('KEEP_CONFIG', 'config: cluster.systemRootTokn: unknown key'))
})

const badText: Array<[string, string]> = [
  ['cluster: [\n', 'config: /etc/keep/c.yml: line 2: Flow sequence in block collection must be sufficiently indented and end with a ]'],
  ['cluster: {}\ncluster: {}\n', 'config: /etc/keep/c.yml: line 2: Map keys must be unique'],
  ['a: 1\n---\nb: 2\n', 'config: /etc/keep/c.yml: line 2: more than one YAML document'],
  ['', 'config: cluster: required'],
  ['# nothing but a comment\n', 'config: cluster: required'],
  ['- cluster\n', 'config: (top level): must be a mapping'],
  ['cluster: *nothing\n', 'config: /etc/keep/c.yml: Unresolved alias (the anchor must be set before the alias): nothing'],
  ['cluster: &c { id: *c }\n', 'config: cluster.id: must be a string'],
  ['"cluster"', 'config: (top level): must be a mapping'],
]

t.test('text that is not a config mapping fails with one line', async (t) => {
  for (const [text, message] of badText) {
    t.throws(() => parseConfig(text, { path: '/etc/keep/c.yml' }), exactly('KEEP_CONFIG', message), JSON.stringify(text))
  }
  t.throws(() => parseConfig('a: [\n'), exactly('KEEP_CONFIG', 'config: line 2: Flow sequence in block collection must be sufficiently indented and end with a ]'), 'without a path, the line alone')
})

t.test('loadConfig reads a file and resolves paths against its directory', async (t) => {
  const dir = t.testdir({ etc: {} })
  const file = path.join(dir, 'etc', 'cluster.yml')
  const doc = minimal()
  doc.datamanager = { collections: 'collections', stateDir: '../dm' }
  writeFileSync(file, JSON.stringify(doc))
  const config = await loadConfig(file)
  t.equal(config.path, file)
  t.equal(config.keepstores[0]?.volumes[0]?.root, path.join(dir, 'etc', 'disk0'))
  t.equal(config.datamanager?.collections, path.join(dir, 'etc', 'collections'))
  t.equal(config.datamanager?.reportFile, path.join(dir, 'dm', 'report.json'))
})

t.test('loadConfig of a missing or unreadable file fails with KEEP_CONFIG', async (t) => {
  const dir = t.testdir({})
  const missing = path.join(dir, 'nope.yml')
  await t.rejects(loadConfig(missing), exactly('KEEP_CONFIG', `config: cannot read ${missing}: ENOENT: no such file or directory`))
  await t.rejects(loadConfig(dir), exactly('KEEP_CONFIG', `config: cannot read ${dir}: EISDIR: illegal operation on a directory`))
})

t.test('selectKeepstore picks by uuid, or the only one', async (t) => {
  const one = parse(minimal())
  t.equal(selectKeepstore(one).uuid, 'zzzzz-bi6l4-000000000000000')
  t.equal(selectKeepstore(one, 'zzzzz-bi6l4-000000000000000').url, 'http://127.0.0.1:25107')
  t.throws(() => selectKeepstore(one, 'zzzzz-bi6l4-999999999999999'), exactly('KEEP_CONFIG', 'config: keepstores: no keepstore with uuid "zzzzz-bi6l4-999999999999999"'))
  const doc = minimal()
  secondKeepstore(doc)
  const two = parse(doc)
  t.equal(selectKeepstore(two, 'zzzzz-bi6l4-000000000000001').url, 'http://127.0.0.1:25108')
  t.throws(() => selectKeepstore(two), exactly('KEEP_CONFIG', 'config: keepstores: 2 keepstores listed; choose one with --uuid'))
})

t.test('requireDatamanager fails when the section is absent', async (t) => {
  t.throws(() => requireDatamanager(parse(minimal())), exactly('KEEP_CONFIG', 'config: datamanager: required'))
})

t.test('keepstoreByOrigin compares URLs by origin', async (t) => {
  const doc = minimal()
  secondKeepstore(doc)
  const config = parse(doc)
  t.equal(keepstoreByOrigin(config, 'http://127.0.0.1:25108/index?x=1')?.uuid, 'zzzzz-bi6l4-000000000000001')
  t.equal(keepstoreByOrigin(config, 'HTTP://127.0.0.1:25107')?.uuid, 'zzzzz-bi6l4-000000000000000')
  t.equal(keepstoreByOrigin(config, 'https://127.0.0.1:25107'), undefined)
  t.equal(keepstoreByOrigin(config, 'not a url'), undefined)
})
