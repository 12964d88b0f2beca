import { createReadStream } from 'node:fs'
import { access } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import { KeepError, isKeepError } from '../shared/errors.js'
import { isValidIndexPrefix } from '../shared/index-format.js'
import { parseLocator } from '../shared/locator.js'
import { adminJson, adminRequest } from './admin-request.js'
import { findServer, type ClientContext } from './context.js'
import { formatTable, isoFromNs } from './table.js'

export interface OutputOptions {
  json: boolean
  out: Writable
}

async function print(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await new Promise((resolve) => out.once('drain', resolve))
}

const INDEX_LINE = /^([0-9a-f]{32})\+(\d+) (\d+)$/

/**
 * `keep index SERVER [PREFIX]`: the server's index, streamed. Human: one
 * `locator  mtime` line per block; JSON: an array of `{"locator", "size",
 * "mtime"}` with `mtime` the exact nanoseconds as a number literal (as trash
 * lists take it; beyond 2^53, so parse it losslessly). A listing without its
 * final empty line was cut short: what arrived is printed, then the command fails.
 */
export async function showIndex(ctx: ClientContext, serverArg: string, prefix: string, options: OutputOptions): Promise<void> {
  if (!isValidIndexPrefix(prefix)) throw new KeepError('KEEP_BAD_REQUEST', `bad prefix ${JSON.stringify(prefix)}: 0 to 32 lowercase hex digits`)
  const server = findServer(ctx.config, serverArg)
  const res = await adminRequest(ctx, server, 'GET', `/index/${prefix}`)
  const lines = createInterface({ input: res.body as unknown as Readable, crlfDelay: Infinity })
  let complete = false
  let first = true
  if (options.json) await print(options.out, '[')
  for await (const line of lines) {
    if (complete) {
      complete = false // something after the empty line: not a well-formed end
      break
    }
    if (line === '') {
      complete = true
      continue
    }
    const m = INDEX_LINE.exec(line)
    if (!m) throw new KeepError('KEEP_INTERNAL', `${server.url}: malformed index line ${JSON.stringify(line.slice(0, 80))}`)
    if (options.json) await print(options.out, `${first ? '\n' : ',\n'}{"locator":"${m[1]}+${m[2]}","size":${m[2]},"mtime":${m[3]}}`)
    else await print(options.out, `${m[1]}+${m[2]}  ${isoFromNs(m[3]!)}\n`)
    first = false
  }
  if (options.json) await print(options.out, first ? ']\n' : '\n]\n')
  if (!complete) throw new KeepError('KEEP_INTERNAL', `${server.url}: index incomplete (no final empty line): the listing above is partial`)
}

interface Mount {
  uuid: string
  device_id?: string
  allow_write?: boolean
  allow_trash?: boolean
  replication?: number
  storage_classes?: Record<string, boolean>
}

export async function showMounts(ctx: ClientContext, serverArg: string, options: OutputOptions): Promise<void> {
  const server = findServer(ctx.config, serverArg)
  const mounts = await adminJson<Mount[]>(ctx, server, '/mounts')
  if (options.json) return print(options.out, `${JSON.stringify(mounts, null, 2)}\n`)
  const rows = mounts.map((m) => [
    m.uuid,
    m.device_id ?? '-',
    m.allow_write ? 'yes' : 'no',
    m.allow_trash ? 'yes' : 'no',
    String(m.replication ?? 1),
    Object.keys(m.storage_classes ?? {}).join(','),
  ])
  await print(options.out, `${formatTable(['mount', 'device', 'write', 'trash', 'replication', 'classes'], rows)}\n`)
}

export type ListKind = 'pull' | 'trash'

interface ListStatus {
  received_at?: string | null
  digest?: string | null
  queued?: number
  in_progress?: number
  done?: number
  failed?: number
  skipped?: number
  items?: Array<{ locator?: string; servers?: string[]; mount_uuid?: string; block_mtime?: unknown }>
}

/** `keep pull|trash show SERVER`. */
export async function showList(ctx: ClientContext, kind: ListKind, serverArg: string, options: OutputOptions): Promise<void> {
  const server = findServer(ctx.config, serverArg)
  const res = await adminRequest(ctx, server, 'GET', `/${kind}`)
  const text = await res.body.text()
  // The text as the server sent it: trash items' block_mtime must not pass through a lossy JSON.parse.
  if (options.json) return print(options.out, text.endsWith('\n') ? text : `${text}\n`)
  const list = JSON.parse(text) as ListStatus
  const counts = ['queued', 'in_progress', 'done', 'failed', 'skipped'].map((k) => `${k.replace('_', ' ')} ${(list as Record<string, unknown>)[k] ?? 0}`).join(', ')
  const out = [`${kind} list of ${server.uuid}: received ${list.received_at ?? 'never'}, digest ${list.digest ?? '-'}`, counts]
  const items = list.items ?? []
  if (items.length) {
    const rows =
      kind === 'pull'
        ? items.map((i) => [i.locator ?? '?', (i.servers ?? []).join(','), i.mount_uuid || '(any)'])
        : items.map((i) => [i.locator ?? '?', rawMtime(text, i.locator), i.mount_uuid || '(every)'])
    out.push('', formatTable(kind === 'pull' ? ['locator', 'from', 'mount'] : ['locator', 'block_mtime', 'mount'], rows))
  }
  await print(options.out, `${out.join('\n')}\n`)
}

/** A trash item's block_mtime as written in the JSON text (exact), found by its locator. */
function rawMtime(text: string, locator: string | undefined): string {
  if (!locator) return '?'
  const at = text.indexOf(`"${locator}"`)
  const m = at === -1 ? null : /"block_mtime"\s*:\s*(\d+)/.exec(text.slice(at, at + 400))
  return m?.[1] ?? '?'
}

/** `keep pull|trash set SERVER FILE` (`-` = stdin) and `clear` (`[]`): the list replaces the server's. */
export async function setList(ctx: ClientContext, kind: ListKind, serverArg: string, file: string | undefined, options: OutputOptions & { stdin?: Readable }): Promise<void> {
  const server = findServer(ctx.config, serverArg)
  let body: string | Readable = '[]'
  if (file === '-') body = options.stdin ?? process.stdin
  else if (file !== undefined) {
    try {
      await access(file)
    } catch (err) {
      throw new KeepError('KEEP_BAD_REQUEST', `cannot read ${file}: ${(err as Error).message}`)
    }
    body = createReadStream(file)
  }
  const res = await adminRequest(ctx, server, 'PUT', `/${kind}`, body)
  await res.body.dump()
  const after = await adminJson<ListStatus>(ctx, server, `/${kind}`)
  if (options.json) return print(options.out, `${JSON.stringify({ server: server.uuid, kind, queued: after.queued, digest: after.digest })}\n`)
  await print(options.out, `${server.uuid}: ${kind} list ${file === undefined ? 'cleared' : 'replaced'}: ${after.queued ?? 0} queued\n`)
}

/** `keep untrash LOCATOR`: asks every keepstore to restore its trashed copies. */
export async function untrash(ctx: ClientContext, locatorArg: string, options: OutputOptions): Promise<void> {
  let hashSize: string
  try {
    const loc = parseLocator(locatorArg)
    hashSize = loc.size === undefined ? loc.hash : `${loc.hash}+${loc.size}`
  } catch (err) {
    throw new KeepError('KEEP_INVALID_LOCATOR', `bad locator ${JSON.stringify(locatorArg.slice(0, 80))}: ${(err as Error).message.replace(/^invalid locator: /, '')}`)
  }
  const results = await Promise.all(
    ctx.config.keepstores.map(async (ks) => {
      try {
        await (await adminRequest(ctx, ks, 'PUT', `/untrash/${hashSize}`)).body.dump()
        return { uuid: ks.uuid, outcome: 'restored' as const, error: undefined }
      } catch (err) {
        if (!isKeepError(err)) throw err
        return { uuid: ks.uuid, outcome: err.code === 'KEEP_NOT_FOUND' ? ('none' as const) : ('error' as const), error: err }
      }
    }),
  )
  const restored = results.filter((r) => r.outcome === 'restored').map((r) => r.uuid)
  const errors = results.flatMap((r) => (r.outcome === 'error' && r.error ? [r.error] : []))
  if (options.json) await print(options.out, `${JSON.stringify({ locator: hashSize, restored, errors: errors.map((e) => e.message) })}\n`)
  else if (restored.length) await print(options.out, `${hashSize}: restored on ${restored.join(', ')}\n`)
  if (restored.length) return
  if (errors[0]) throw errors[0]
  throw new KeepError('KEEP_BLOCK_NOT_FOUND', `${hashSize}: no keepstore holds a trashed copy`)
}

/** `keep sign LOCATOR`: a signed locator for the token in use, for operators who hold the key. */
export function sign(ctx: ClientContext, locatorArg: string): string {
  if (!ctx.signer) throw new KeepError('KEEP_CONFIG', 'config: cluster.blobSigningKey: needed to sign (and blobSigning must be on)')
  try {
    return ctx.signer.sign(locatorArg, ctx.token)
  } catch (err) {
    throw new KeepError('KEEP_INVALID_LOCATOR', `bad locator ${JSON.stringify(locatorArg.slice(0, 80))}: ${(err as Error).message.replace(/^invalid locator: /, '')}`)
  }
}
