import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { parseDocument } from 'yaml'
import { KeepError } from './errors.js'
import { configError, formatKeyPath, validateConfig, type RawConfig } from './config-schema.js'

/**
 * The cluster config file (DESIGN.md §3), validated once here; programs trust
 * what they get. Every failure is a KeepError `KEEP_CONFIG` whose message is
 * one line, `config: <key path>: <reason>` (programs exit 2 on it). Durations
 * are milliseconds (the TTL, which is signed, in whole seconds), sizes bytes,
 * and every path absolute, resolved against the config file's directory.
 * A key with an empty YAML value (`key:` or `key: ~`) counts as absent.
 */

/** One volume of one keepstore. */
export interface VolumeConfig {
  uuid: string
  driver: 'directory' | 'memory'
  /** Absolute; set exactly when the driver is `directory`. */
  root: string | undefined
  readOnly: boolean
  /** As Keep's AllowTrashWhenReadOnly: a read-only volume may still be trashed from (writes stay refused). */
  allowTrashWhenReadOnly: boolean
  /** Copies this volume itself provides. */
  replication: number
  storageClasses: string[]
  /** Higher first within the server. */
  priority: number
}

export interface KeepstoreConfig {
  uuid: string
  /** As written; how clients and other keepstores reach this one. */
  url: string
  /** `new URL(url).origin`, the form URLs are compared in. */
  origin: string
  /** From `listen`, else from `url` (its port, or 80/443). */
  listen: { host: string; port: number }
  tls: { certificate: string; key: string } | undefined
  maxConcurrentRequests: number
  /** PUTs and pull writes in flight; their own queue (as long), so reads never wait behind writes. */
  maxConcurrentWrites: number
  /** Worklists' database; `undefined` = in memory (every volume is `memory`). */
  stateDir: string | undefined
  pullConcurrency: number
  trashConcurrency: number
  headerTimeoutMs: number
  requestTimeoutMs: number
  /** A request body that sends nothing this long is cut. */
  bodyIdleTimeoutMs: number
  /** MB/s the scrubber may read (0 = no periodic scrub). */
  scrubRate: number
  /** Bytes; a volume with less free space is `full`. */
  minFreeSpace: number
  /** How long the index cache may reuse a file's stat before it stats it again (0: never reuses one). */
  indexRescanIntervalMs: number
  volumes: VolumeConfig[]
}

/** `cluster.etcd`: live membership and one datamanager cluster-wide (absent: static config, file lock). */
export interface EtcdConfig {
  /** gRPC endpoints, `http://host:port`. */
  endpoints: string[]
  /** Every key lives under it; ends with `/` (default `/keep/<cluster id>/`). */
  prefix: string
  /** Whole seconds ≥ 1: a killed keepstore (or datamanager) loses its registration (or lock) this long after its last keepalive. */
  leaseTTLSeconds: number
}

export interface ClusterConfig {
  id: string
  systemRootToken: string
  /** `undefined` → /metrics and /_health answer 404 `disabled`. */
  managementToken: string | undefined
  blobSigning: boolean
  /** Always set when `blobSigning`. */
  blobSigningKey: string | undefined
  /** Whole seconds ≥ 1 (signed as hex seconds); also the "too young to trash" age. */
  blobSigningTTLSeconds: number
  maxClockSkewMs: number
  blobTrash: boolean
  /** 0 = delete at once. */
  blobTrashLifetimeMs: number
  blobTrashCheckIntervalMs: number
  defaultReplication: number
  etcd: EtcdConfig | undefined
}

export interface DatamanagerConfig {
  /** A .jsonl file or a directory of *.json / *.jsonl. */
  collections: string
  periodMs: number
  pullLimit: number
  trashLimit: number
  stateDir: string
  lostBlocksFile: string
  reportFile: string
  listen: { host: string; port: number } | undefined
  /** A run still going after this is refused (keep-balance's BalanceTimeout). */
  runTimeoutMs: number
  /** A larger collection record refuses the run. */
  maxRecordBytes: number
  /** With etcd: a run starts this long after a keepstore comes or goes; one gone longer is down (PROTOCOL §8). */
  membershipSettleMs: number
}

export interface Config {
  /** Absolute path of the file read, if any. */
  path: string | undefined
  cluster: ClusterConfig
  keepstores: KeepstoreConfig[]
  /** Optional in the file; `bin/datamanager` calls {@link requireDatamanager}. */
  datamanager: DatamanagerConfig | undefined
}

/** `key:` with no value means "not set". A recursive alias (`a: &x [*x]`) is left as is for the schema to refuse. */
function withoutNulls(value: unknown, ancestors = new Set<unknown>()): unknown {
  if (value === null || typeof value !== 'object' || ancestors.has(value)) return value
  ancestors.add(value)
  let out: unknown
  if (Array.isArray(value)) {
    out = value.map((item) => withoutNulls(item, ancestors))
  } else {
    const copy: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) if (item !== null) copy[key] = withoutNulls(item, ancestors)
    out = copy
  }
  ancestors.delete(value)
  return out
}

function parseYaml(text: string, file: string | undefined): unknown {
  const where = file === undefined ? '' : ` ${file}:`
  const doc = parseDocument(text)
  const error = doc.errors[0]
  if (error !== undefined) {
    const line = error.linePos?.[0].line
    const reason =
      error.code === 'MULTIPLE_DOCS'
        ? 'more than one YAML document'
        : (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')
    throw new KeepError('KEEP_CONFIG', `config:${where}${line === undefined ? '' : ` line ${line}:`} ${reason}`)
  }
  try {
    return doc.toJS() ?? {}
  } catch (err) {
    throw new KeepError('KEEP_CONFIG', `config:${where} ${(err as Error).message.split('\n')[0]}`, { cause: err })
  }
}

/** Remembers the first key path of each value and rejects a second one. */
function createUniqueness() {
  const seen = new Map<string, string>()
  return (value: string, keyPath: Array<string | number>, shown: string = value): void => {
    const first = seen.get(value)
    if (first !== undefined) throw configError(keyPath, `duplicate ${JSON.stringify(shown)} (also ${first})`)
    seen.set(value, formatKeyPath(keyPath))
  }
}

function listenFromUrl(url: URL): { host: string; port: number } {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port)
  return { host, port }
}

function resolveCluster(raw: RawConfig['cluster']): ClusterConfig {
  return {
    id: raw.id,
    systemRootToken: raw.systemRootToken,
    managementToken: raw.managementToken,
    blobSigning: raw.blobSigning,
    blobSigningKey: raw.blobSigningKey,
    blobSigningTTLSeconds: raw.blobSigningTTL / 1000,
    maxClockSkewMs: raw.maxClockSkew,
    blobTrash: raw.blobTrash,
    blobTrashLifetimeMs: raw.blobTrashLifetime,
    blobTrashCheckIntervalMs: raw.blobTrashCheckInterval,
    defaultReplication: raw.defaultReplication,
    etcd: raw.etcd && {
      endpoints: raw.etcd.endpoints,
      prefix: raw.etcd.prefix ?? `/keep/${raw.id}/`,
      leaseTTLSeconds: raw.etcd.leaseTTL / 1000,
    },
  }
}

function resolveKeepstores(raw: RawConfig['keepstores'], resolve: (p: string) => string): KeepstoreConfig[] {
  const uuids = createUniqueness()
  const origins = createUniqueness()
  const volumeUuids = createUniqueness()
  // One root on two hosts is normal (/var/lib/keep/disk0 everywhere); on one host it is one disk twice.
  const roots = createUniqueness()
  return raw.map((ks, k) => {
    const url = new URL(ks.url)
    uuids(ks.uuid, ['keepstores', k, 'uuid'])
    origins(url.origin, ['keepstores', k, 'url'])
    const volumes = ks.volumes.map((vol, v): VolumeConfig => {
      const root = vol.root === undefined ? undefined : resolve(vol.root)
      volumeUuids(vol.uuid, ['keepstores', k, 'volumes', v, 'uuid'])
      if (root !== undefined) roots(`${url.hostname} ${root}`, ['keepstores', k, 'volumes', v, 'root'], root)
      const { uuid, driver, readOnly, allowTrashWhenReadOnly, replication, storageClasses, priority } = vol
      return { uuid, driver, root, readOnly, allowTrashWhenReadOnly, replication, storageClasses, priority }
    })
    const firstRoot = volumes.find((vol) => vol.root !== undefined)?.root
    const defaultStateDir = firstRoot === undefined ? undefined : path.join(firstRoot, '.keep-state')
    const stateDir = ks.stateDir === undefined ? defaultStateDir : resolve(ks.stateDir)
    return {
      uuid: ks.uuid,
      url: ks.url,
      origin: url.origin,
      listen: ks.listen ?? listenFromUrl(url),
      tls: ks.tls && { certificate: resolve(ks.tls.certificate), key: resolve(ks.tls.key) },
      maxConcurrentRequests: ks.maxConcurrentRequests,
      maxConcurrentWrites: ks.maxConcurrentWrites,
      stateDir,
      pullConcurrency: ks.pullConcurrency,
      trashConcurrency: ks.trashConcurrency,
      headerTimeoutMs: ks.headerTimeout,
      requestTimeoutMs: ks.requestTimeout,
      bodyIdleTimeoutMs: ks.bodyIdleTimeout,
      scrubRate: ks.scrubRate,
      minFreeSpace: ks.minFreeSpace,
      indexRescanIntervalMs: ks.indexRescanInterval,
      volumes,
    }
  })
}

function resolveDatamanager(raw: NonNullable<RawConfig['datamanager']>, resolve: (p: string) => string): DatamanagerConfig {
  const stateDir = resolve(raw.stateDir)
  return {
    collections: resolve(raw.collections),
    periodMs: raw.period,
    pullLimit: raw.pullLimit,
    trashLimit: raw.trashLimit,
    stateDir,
    lostBlocksFile: raw.lostBlocksFile === undefined ? path.join(stateDir, 'lost-blocks.txt') : resolve(raw.lostBlocksFile),
    reportFile: raw.reportFile === undefined ? path.join(stateDir, 'report.json') : resolve(raw.reportFile),
    listen: raw.listen,
    runTimeoutMs: raw.runTimeout,
    maxRecordBytes: raw.maxRecordBytes,
    membershipSettleMs: raw.membershipSettle,
  }
}

/**
 * Parses and validates config text (YAML; JSON is YAML). Relative paths
 * resolve against `baseDir`, else the directory of `path`, else the cwd.
 * @throws KeepError KEEP_CONFIG, one line naming the key.
 */
export function parseConfig(text: string, options: { baseDir?: string; path?: string } = {}): Config {
  const file = options.path === undefined ? undefined : path.resolve(options.path)
  const baseDir = path.resolve(options.baseDir ?? (file === undefined ? '.' : path.dirname(file)))
  const raw = validateConfig(withoutNulls(parseYaml(text, file)))
  const resolve = (p: string): string => path.resolve(baseDir, p)
  return {
    path: file,
    cluster: resolveCluster(raw.cluster),
    keepstores: resolveKeepstores(raw.keepstores, resolve),
    datamanager: raw.datamanager && resolveDatamanager(raw.datamanager, resolve),
  }
}

/** Reads and parses a config file. @throws KeepError KEEP_CONFIG */
export async function loadConfig(file: string): Promise<Config> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    // Node says "ENOENT: no such file or directory, open '/x'": the file is already named.
    const reason = (err as Error).message.replace(/, \w+(?: '.*')?$/, '')
    throw new KeepError('KEEP_CONFIG', `config: cannot read ${file}: ${reason}`, { cause: err })
  }
  return parseConfig(text, { path: file })
}

/**
 * The keepstore this process serves: `uuid`, or the only one when omitted.
 * @throws KeepError KEEP_CONFIG for an unknown uuid, or none given among several.
 */
export function selectKeepstore(config: Config, uuid?: string): KeepstoreConfig {
  if (uuid === undefined) {
    const [only, ...rest] = config.keepstores
    if (only !== undefined && rest.length === 0) return only
    throw new KeepError('KEEP_CONFIG', `config: keepstores: ${config.keepstores.length} keepstores listed; choose one with --uuid`)
  }
  const found = config.keepstores.find((ks) => ks.uuid === uuid)
  if (found === undefined) throw new KeepError('KEEP_CONFIG', `config: keepstores: no keepstore with uuid ${JSON.stringify(uuid)}`)
  return found
}

/** @throws KeepError KEEP_CONFIG when the file has no `datamanager` section. */
export function requireDatamanager(config: Config): DatamanagerConfig {
  if (config.datamanager === undefined) throw new KeepError('KEEP_CONFIG', 'config: datamanager: required')
  return config.datamanager
}

/** The keepstore whose url has the same origin as `url`; `undefined` if none or unparsable. */
export function keepstoreByOrigin(config: Config, url: string): KeepstoreConfig | undefined {
  let origin: string
  try {
    origin = new URL(url).origin
  } catch {
    return undefined
  }
  return config.keepstores.find((ks) => ks.origin === origin)
}
