import { z } from 'zod'
import { KeepError } from './errors.js'
import { parseDuration, parseSize } from './duration.js'

/**
 * The zod schema of the config file (DESIGN.md §3): key names, types,
 * defaults and per-key rules. Cross-key rules that need the whole cluster
 * (duplicates, path resolution, derived defaults) live in `config.ts`.
 * Durations come out in milliseconds, sizes in bytes, `listen` as host/port;
 * paths are still as written.
 */

const DURATION_HINT = 'must be a duration like 336h, 10m, 2s, 500ms or a number of seconds'

function duration(fallback: string, rule?: (ms: number) => string | undefined) {
  return z
    .union([z.string(), z.number()], { error: DURATION_HINT })
    .default(fallback)
    .transform((value, ctx) => {
      let ms: number
      try {
        ms = parseDuration(value)
      } catch (err) {
        ctx.addIssue((err as Error).message)
        return z.NEVER
      }
      const problem = rule?.(ms)
      if (problem !== undefined) {
        ctx.addIssue(problem)
        return z.NEVER
      }
      return ms
    })
}

const positive = (ms: number): string | undefined => (ms > 0 ? undefined : 'must be > 0')

function size(fallback: string) {
  return z
    .union([z.string(), z.number()], { error: 'must be a size like 64MiB, 10MB or a number of bytes' })
    .default(fallback)
    .transform((value, ctx) => {
      try {
        return parseSize(value)
      } catch (err) {
        ctx.addIssue((err as Error).message)
        return z.NEVER
      }
    })
}

function integer(min: number, fallback: number) {
  return z.number().int(`must be an integer ≥ ${min}`).min(min, `must be an integer ≥ ${min}`).default(fallback)
}

const text = z.string().min(1, 'must not be empty')

/**
 * Arvados-style uuids (DESIGN §3): every client computes the same rendezvous
 * order only when the last 15 characters are the weight suffix (PROTOCOL §6).
 */
const ARVADOS_UUID = /^[a-z0-9]{5}-[a-z0-9]{5}-[a-z0-9]{15}$/
const uuid = z.string().superRefine((value, ctx) => {
  if (!ARVADOS_UUID.test(value)) {
    ctx.addIssue(`must be an Arvados-style uuid, 5-5-15 lowercase letters or digits like zzzzz-nyw5e-000000000000000 (got ${JSON.stringify(value)})`)
  }
})

const HOST_PORT = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/

/** `host:port`, `[::1]:port` or `:port` (all interfaces). */
const hostPort = z.string().transform((value, ctx) => {
  const match = HOST_PORT.exec(value)
  const port = Number(match?.[3])
  if (match === null || port > 65535) {
    ctx.addIssue(`must be host:port, e.g. 0.0.0.0:25107 (got ${JSON.stringify(value)})`)
    return z.NEVER
  }
  const host = match[1] ?? match[2] ?? ''
  return { host: host === '' ? '0.0.0.0' : host, port }
})

const httpUrl = z.string().superRefine((value, ctx) => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    ctx.addIssue(`must be an http:// or https:// URL (got ${JSON.stringify(value)})`)
    return
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue(`must be an http:// or https:// URL (got ${JSON.stringify(value)})`)
  } else if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '') {
    ctx.addIssue(`must be scheme://host:port only, without path, query, fragment or credentials (got ${JSON.stringify(value)})`)
  }
})

/** etcd speaks gRPC over http(s) and keeps leases in whole seconds. */
const etcdSchema = z.strictObject({
  endpoints: z.array(httpUrl).min(1, 'must list at least one endpoint'),
  prefix: z
    .string()
    .regex(/^\/(?:[^\s]*\/)?$/, 'must start and end with / (e.g. /keep/zzzzz/)')
    .optional(),
  leaseTTL: duration('10s', (ms) => (Number.isInteger(ms / 1000) && ms >= 1000 ? undefined : 'must be whole seconds ≥ 1s')),
})

const clusterSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9]{5}$/, 'must be 5 lowercase letters or digits'),
    systemRootToken: z.string().min(32, 'must be at least 32 characters'),
    managementToken: text.optional(),
    blobSigning: z.boolean().default(true),
    blobSigningKey: z.string().min(32, 'must be at least 32 characters').optional(),
    blobSigningTTL: duration('336h', (ms) =>
      Number.isInteger(ms / 1000) && ms >= 1000 ? undefined : 'must be whole seconds ≥ 1s',
    ),
    maxClockSkew: duration('10m'),
    blobTrash: z.boolean().default(true),
    blobTrashLifetime: duration('336h'),
    blobTrashCheckInterval: duration('24h', positive),
    defaultReplication: integer(1, 2),
    etcd: etcdSchema.optional(),
  })
  .superRefine((cluster, ctx) => {
    if (cluster.blobSigning && cluster.blobSigningKey === undefined) {
      ctx.addIssue({ code: 'custom', path: ['blobSigningKey'], message: 'required when blobSigning is true' })
    }
  })

const volumeSchema = z
  .strictObject({
    uuid,
    driver: z.enum(['directory', 'memory']).default('directory'),
    root: text.optional(),
    readOnly: z.boolean().default(false),
    allowTrashWhenReadOnly: z.boolean().default(false),
    replication: integer(1, 1),
    storageClasses: z
      .array(text)
      .min(1, 'must list at least one class')
      .default(['default'])
      .superRefine((classes, ctx) => {
        const index = classes.findIndex((name, i) => classes.indexOf(name) !== i)
        if (index >= 0) ctx.addIssue({ code: 'custom', path: [index], message: `duplicate ${JSON.stringify(classes[index])}` })
      }),
    priority: z.number().int('must be an integer').default(0),
  })
  .superRefine((volume, ctx) => {
    if (volume.driver === 'directory' && volume.root === undefined) {
      ctx.addIssue({ code: 'custom', path: ['root'], message: 'required' })
    } else if (volume.driver === 'memory' && volume.root !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['root'], message: 'only for the directory driver' })
    }
  })

const keepstoreSchema = z
  .strictObject({
    uuid,
    url: httpUrl,
    listen: hostPort.optional(),
    tls: z.strictObject({ certificate: text, key: text }).optional(),
    maxConcurrentRequests: integer(1, 64),
    maxConcurrentWrites: integer(1, 16),
    stateDir: text.optional(),
    pullConcurrency: integer(1, 4),
    trashConcurrency: integer(1, 1),
    headerTimeout: duration('60s'),
    requestTimeout: duration('5m'),
    bodyIdleTimeout: duration('30s', positive),
    minFreeSpace: size('64MiB'),
    scrubRate: z.number({ error: 'must be a number of MB/s (0 = off)' }).min(0, 'must be ≥ 0 (0 = off)').default(0),
    indexRescanInterval: duration('24h'),
    volumes: z.array(volumeSchema).min(1, 'must list at least one volume'),
  })
  .superRefine((keepstore, ctx) => {
    if (keepstore.tls !== undefined && !/^https:/i.test(keepstore.url)) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'must be https:// when tls is set' })
    }
  })

const datamanagerSchema = z.strictObject({
  collections: text,
  period: duration('10m', positive),
  pullLimit: integer(0, 100_000),
  trashLimit: integer(0, 100_000),
  stateDir: text,
  lostBlocksFile: text.optional(),
  reportFile: text.optional(),
  listen: hostPort.optional(),
  runTimeout: duration('6h', positive),
  membershipSettle: duration('30s'),
  maxRecordBytes: size('256MiB').refine((n) => n >= 1024 && n <= 512 * 1024 * 1024, 'must be between 1KiB and 512MiB'),
})

export const configSchema = z.strictObject({
  cluster: clusterSchema,
  keepstores: z.array(keepstoreSchema).min(1, 'must list at least one keepstore'),
  datamanager: datamanagerSchema.optional(),
})

/** The validated file, before cluster-wide checks and path resolution. */
export type RawConfig = z.output<typeof configSchema>

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
}

/** Messages for the issues zod raises itself; the schema words its own rules. */
function genericMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? 'required' : `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`
    case 'unrecognized_keys':
      return 'unknown key'
    default:
      return undefined
  }
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

/** `keepstores[0].volumes[1].root` from zod's `['keepstores', 0, 'volumes', 1, 'root']`. */
export function formatKeyPath(path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else if (typeof part === 'string' && IDENTIFIER.test(part)) out += out === '' ? part : `.${part}`
    else out += `[${JSON.stringify(String(part))}]`
  }
  return out === '' ? '(top level)' : out
}

export function configError(path: ReadonlyArray<PropertyKey>, reason: string): KeepError {
  return new KeepError('KEEP_CONFIG', `config: ${formatKeyPath(path)}: ${reason}`)
}

/**
 * Validates parsed YAML against the schema.
 * @throws KeepError KEEP_CONFIG naming one key. An unknown key is reported
 * before anything else: it is usually a misspelling of the key that is
 * "required" or wrong.
 */
export function validateConfig(data: unknown): RawConfig {
  const result = configSchema.safeParse(data, { error: genericMessage })
  if (result.success) return result.data
  const issues = result.error.issues
  const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]
  if (issue === undefined) throw new KeepError('KEEP_CONFIG', 'config: invalid')
  if (issue.code === 'unrecognized_keys') throw configError([...issue.path, issue.keys[0] ?? ''], issue.message)
  throw configError(issue.path, issue.message.split('\n')[0] ?? issue.message)
}
