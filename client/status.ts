import { readFile } from 'node:fs/promises'
import { isKeepError } from '../shared/errors.js'
import { readMembership } from '../shared/membership.js'
import { adminJson } from './admin-request.js'
import type { ClientContext } from './context.js'
import { KEEP_EXIT } from './exit-codes.js'
import { humanBytes } from './progress.js'
import { formatTable } from './table.js'

/** `GET /status` as the keepstore answers it (PROTOCOL §3, ours). */
interface KeepstoreStatus {
  version?: string
  volumes?: Array<{ uuid: string; state?: string; free_bytes?: number; total_bytes?: number; errors?: number; read_only?: boolean }>
  pull?: Record<string, number>
  trash?: Record<string, number>
}

/** Registered in etcd right now (`live`), not (`down`: stopped, or killed and its lease expired), or etcd did not answer (`unknown`). */
export type Liveness = 'live' | 'down' | 'unknown'

export interface ServerStatus {
  uuid: string
  url: string
  reachable: boolean
  /** With `cluster.etcd`: its registration; `null` without etcd. */
  liveness: Liveness | null
  /** Why it could not be read (unreachable, permission denied), else undefined. */
  error: string | undefined
  errorCode: string | undefined
  status: KeepstoreStatus | undefined
}

export interface DatamanagerStatus {
  reportFile: string
  /** The report's main fields; undefined when unreadable. */
  report: { finishedAt?: string; outcome?: string; categories?: Record<string, { blocks: number; bytes: number; replicas: number }> } | undefined
  error: string | undefined
}

export interface ClusterStatus {
  /** With `cluster.etcd`: whether it answered (`unreachable`: every keepstore's liveness is `unknown`); `null` without etcd. */
  membership: { etcd: 'ok' | 'unreachable'; endpoints: string[] } | null
  keepstores: ServerStatus[]
  datamanager: DatamanagerStatus | undefined
}

export interface StatusOptions {
  /** How long etcd may take to list the membership (default 3 s). */
  membershipTimeoutMs?: number
}

export async function clusterStatus(ctx: ClientContext, options: StatusOptions = {}): Promise<ClusterStatus> {
  // Registrations are read beside the keepstores' own answers (etcd is never asked for more than liveness).
  const members = readMembership(ctx.config, { timeoutMs: options.membershipTimeoutMs ?? 3000 }).catch(() => [])
  const answers = await Promise.all(
    ctx.config.keepstores.map(async (ks): Promise<Omit<ServerStatus, 'liveness'>> => {
      try {
        const status = await adminJson<KeepstoreStatus>(ctx, ks, '/status')
        return { uuid: ks.uuid, url: ks.url, reachable: true, error: undefined, errorCode: undefined, status }
      } catch (err) {
        if (!isKeepError(err)) throw err
        return { uuid: ks.uuid, url: ks.url, reachable: err.code !== 'KEEP_UNAVAILABLE', error: err.message, errorCode: err.code, status: undefined }
      }
    }),
  )
  const membership = await members
  const etcd = ctx.config.cluster.etcd
  // readMembership lists every configured keepstore (a uuid the config does not list is ignored there); all
  // `unknown` means etcd did not answer in time.
  const state = new Map((membership ?? []).map((m) => [m.uuid, m.state]))
  const answered = membership !== undefined && membership.some((m) => m.state !== 'unknown')
  const liveness = (uuid: string): Liveness | null => {
    if (etcd === undefined) return null
    const s = answered ? state.get(uuid) : undefined
    return s === 'live' ? 'live' : s === 'absent' ? 'down' : 'unknown'
  }
  return {
    membership: etcd === undefined ? null : { etcd: answered || ctx.config.keepstores.length === 0 ? 'ok' : 'unreachable', endpoints: etcd.endpoints },
    keepstores: answers.map((a) => ({ ...a, liveness: liveness(a.uuid) })),
    datamanager: await datamanagerStatus(ctx),
  }
}

async function datamanagerStatus(ctx: ClientContext): Promise<DatamanagerStatus | undefined> {
  const file = ctx.config.datamanager?.reportFile
  if (file === undefined) return undefined
  try {
    const report = JSON.parse(await readFile(file, 'utf8')) as DatamanagerStatus['report'] & object
    return { reportFile: file, report: { finishedAt: report.finishedAt, outcome: report.outcome, categories: report.categories }, error: undefined }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return { reportFile: file, report: undefined, error: code === 'ENOENT' ? 'no report yet' : (err as Error).message }
  }
}

/**
 * 0 when every keepstore answered (and, with etcd, etcd answered and every
 * keepstore is registered); else 5 when one refused the token, 3 when one did
 * not answer, etcd did not answer, or a keepstore is down in etcd.
 */
export function statusExitCode(status: ClusterStatus): number {
  if (status.keepstores.some((k) => k.errorCode === 'KEEP_UNAUTHORIZED' || k.errorCode === 'KEEP_FORBIDDEN')) return KEEP_EXIT.permissionDenied
  if (status.keepstores.some((k) => k.error !== undefined)) return KEEP_EXIT.unreachable
  if (status.membership?.etcd === 'unreachable' || status.keepstores.some((k) => k.liveness === 'down')) return KEEP_EXIT.unreachable
  return KEEP_EXIT.ok
}

const counters = (c: Record<string, number> | undefined, keys: string[]): string => (c ? keys.map((k) => c[k] ?? 0).join('/') : '-')

export function renderStatus(status: ClusterStatus): string {
  const rows = status.keepstores.map((k) => {
    const vols = k.status?.volumes ?? []
    const free = vols.reduce((n, v) => n + (v.free_bytes ?? 0), 0)
    const total = vols.reduce((n, v) => n + (v.total_bytes ?? 0), 0)
    const bad = vols.filter((v) => v.state !== 'ok').length
    const state = !k.reachable ? 'unreachable' : k.error ? 'denied' : bad ? 'degraded' : 'up'
    return [
      k.uuid,
      k.url,
      state,
      ...(status.membership ? [k.liveness ?? '-'] : []),
      k.status?.version ?? '-',
      k.status ? `${vols.length}${bad ? ` (${bad} not ok)` : ''}` : '-',
      k.status ? `${humanBytes(free)} of ${humanBytes(total)}` : '-',
      counters(k.status?.pull, ['queued', 'in_progress', 'done', 'failed']),
      counters(k.status?.trash, ['queued', 'in_progress', 'done', 'failed', 'skipped']),
    ]
  })
  const out = [formatTable(['keepstore', 'url', 'state', ...(status.membership ? ['etcd'] : []), 'version', 'volumes', 'free', 'pull q/run/done/fail', 'trash q/run/done/fail/skip'], rows)]
  const volumes = status.keepstores.flatMap((k) =>
    (k.status?.volumes ?? []).map((v) => [v.uuid, k.uuid, v.state ?? '-', humanBytes(v.free_bytes ?? 0), humanBytes(v.total_bytes ?? 0), String(v.errors ?? 0), v.read_only ? 'read-only' : 'writable']),
  )
  if (volumes.length) out.push('', formatTable(['volume', 'keepstore', 'state', 'free', 'total', 'errors', 'mode'], volumes))
  for (const k of status.keepstores) if (k.error) out.push(`${k.uuid}: ${k.error}`)
  if (status.membership?.etcd === 'unreachable') out.push(`membership: unknown (etcd unreachable: ${status.membership.endpoints.join(', ')})`)
  const dm = status.datamanager
  if (dm) {
    out.push('')
    if (!dm.report) out.push(`datamanager: ${dm.error} (${dm.reportFile})`)
    else {
      out.push(`datamanager: last run finished ${dm.report.finishedAt ?? '?'}, outcome ${dm.report.outcome ?? '?'} (${dm.reportFile})`)
      const cats = Object.entries(dm.report.categories ?? {}).map(([name, c]) => [name, String(c.blocks), humanBytes(c.bytes), String(c.replicas)])
      if (cats.length) out.push(formatTable(['category', 'blocks', 'bytes', 'replicas'], cats))
    }
  }
  return out.join('\n')
}
