import { readFile } from 'node:fs/promises'
import { isKeepError } from '../shared/errors.js'
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

export interface ServerStatus {
  uuid: string
  url: string
  reachable: boolean
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
  keepstores: ServerStatus[]
  datamanager: DatamanagerStatus | undefined
}

export async function clusterStatus(ctx: ClientContext): Promise<ClusterStatus> {
  const keepstores = await Promise.all(
    ctx.config.keepstores.map(async (ks): Promise<ServerStatus> => {
      try {
        const status = await adminJson<KeepstoreStatus>(ctx, ks, '/status')
        return { uuid: ks.uuid, url: ks.url, reachable: true, error: undefined, errorCode: undefined, status }
      } catch (err) {
        if (!isKeepError(err)) throw err
        return { uuid: ks.uuid, url: ks.url, reachable: err.code !== 'KEEP_UNAVAILABLE', error: err.message, errorCode: err.code, status: undefined }
      }
    }),
  )
  return { keepstores, datamanager: await datamanagerStatus(ctx) }
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

/** 0 when every keepstore answered; else 5 when one refused the token, 3 when one did not answer. */
export function statusExitCode(status: ClusterStatus): number {
  if (status.keepstores.some((k) => k.errorCode === 'KEEP_UNAUTHORIZED' || k.errorCode === 'KEEP_FORBIDDEN')) return KEEP_EXIT.permissionDenied
  if (status.keepstores.some((k) => k.error !== undefined)) return KEEP_EXIT.unreachable
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
      k.status?.version ?? '-',
      k.status ? `${vols.length}${bad ? ` (${bad} not ok)` : ''}` : '-',
      k.status ? `${humanBytes(free)} of ${humanBytes(total)}` : '-',
      counters(k.status?.pull, ['queued', 'in_progress', 'done', 'failed']),
      counters(k.status?.trash, ['queued', 'in_progress', 'done', 'failed', 'skipped']),
    ]
  })
  const out = [formatTable(['keepstore', 'url', 'state', 'version', 'volumes', 'free', 'pull q/run/done/fail', 'trash q/run/done/fail/skip'], rows)]
  const volumes = status.keepstores.flatMap((k) =>
    (k.status?.volumes ?? []).map((v) => [v.uuid, k.uuid, v.state ?? '-', humanBytes(v.free_bytes ?? 0), humanBytes(v.total_bytes ?? 0), String(v.errors ?? 0), v.read_only ? 'read-only' : 'writable']),
  )
  if (volumes.length) out.push('', formatTable(['volume', 'keepstore', 'state', 'free', 'total', 'errors', 'mode'], volumes))
  for (const k of status.keepstores) if (k.error) out.push(`${k.uuid}: ${k.error}`)
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
