import path from 'node:path'
import { parseConfig, type Config } from '../../shared/config.js'

// The cluster config of tests, apart from the keepstores themselves (cluster.ts starts those):
// a test that only needs a config does not load the keepstore's modules.

/** A fixed start time (ms) for clocks the tests move by hand. */
export const T0 = 1_700_000_000_000
export const HOUR = 3_600_000

export const ADMIN_TOKEN = 'admin-token-0123456789abcdefghijklmnopqrstuvwxyz'
export const MANAGEMENT_TOKEN = 'management-token-0123456789abcdefghijklmnop'
export const SIGNING_KEY = 'signing-key-0123456789abcdefghijklmnopqrstuvwxyz'

export interface VolumeSpec {
  driver: 'memory' | 'directory'
  readOnly?: boolean
  allowTrashWhenReadOnly?: boolean
  storageClasses?: string[]
  replication?: number
  priority?: number
}

export interface ClusterOptions {
  keepstores?: number
  /** Volumes per keepstore: 'memory' or 'directory'; default one memory volume. A function gives keepstore i its own. */
  volumes?: VolumeSpec[] | ((keepstore: number) => VolumeSpec[])
  /** Extra cluster keys (YAML values), e.g. { blobSigningTTL: '1h', blobTrash: false }. */
  cluster?: Record<string, unknown>
  /** Extra keys per keepstore. */
  keepstore?: Record<string, unknown>
  datamanager?: Record<string, unknown>
  now?: () => number
  /** Log lines land here (JSON objects) when given. */
  logs?: object[]
  /** A pull source's response-headers timeout (default 60 s). */
  pullHeadersTimeoutMs?: number
}

/** The `cluster:` section of every test config: id, tokens and signing key, then `extra` keys. */
export function clusterSection(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: 'zzzzz', systemRootToken: ADMIN_TOKEN, managementToken: MANAGEMENT_TOKEN, blobSigningKey: SIGNING_KEY, ...extra }
}

/** The config document (what a config file holds) of a test cluster: programs run as children read it from a file. */
export function clusterDoc(dir: string, ports: number[], options: ClusterOptions = {}): Record<string, unknown> {
  const spec = options.volumes ?? [{ driver: 'memory' as const }]
  const volumesOf = (i: number): VolumeSpec[] => (typeof spec === 'function' ? spec(i) : spec)
  return {
    cluster: clusterSection(options.cluster),
    keepstores: ports.map((port, i) => ({
      uuid: `zzzzz-bi6l4-${String(i).padStart(15, '0')}`,
      url: `http://127.0.0.1:${port}`,
      stateDir: path.join(dir, `state${i}`),
      ...options.keepstore,
      volumes: volumesOf(i).map((v, j) => ({
        uuid: `zzzzz-nyw5e-${String(i).padStart(7, '0')}${String(j).padStart(8, '0')}`,
        driver: v.driver,
        ...(v.driver === 'directory' ? { root: path.join(dir, `ks${i}-vol${j}`) } : {}),
        ...(v.readOnly ? { readOnly: true } : {}),
        ...(v.allowTrashWhenReadOnly ? { allowTrashWhenReadOnly: true } : {}),
        ...(v.storageClasses ? { storageClasses: v.storageClasses } : {}),
        ...(v.replication ? { replication: v.replication } : {}),
        ...(v.priority ? { priority: v.priority } : {}),
      })),
    })),
    ...(options.datamanager ? { datamanager: options.datamanager } : {}),
  }
}

export function clusterConfig(dir: string, ports: number[], options: ClusterOptions = {}): Config {
  return parseConfig(JSON.stringify(clusterDoc(dir, ports, options)), { baseDir: dir })
}
