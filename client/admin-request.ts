import type { Readable } from 'node:stream'
import type { KeepstoreConfig } from '../shared/config.js'
import { KeepError } from '../shared/errors.js'
import type { RawResponse } from '../shared/keepstore-client.js'
import { codeForStatus, describeNetError, reasonOf, type ClientContext } from './context.js'

/**
 * One admin request to one keepstore, 200 or a KeepError a person can act
 * on: unreachable (KEEP_UNAVAILABLE), token refused (KEEP_UNAUTHORIZED /
 * KEEP_FORBIDDEN), a body the server refused (KEEP_BAD_REQUEST, its reason).
 */
export async function adminRequest(
  ctx: ClientContext,
  server: KeepstoreConfig,
  method: 'GET' | 'PUT',
  path: string,
  body?: string | Readable,
): Promise<RawResponse> {
  let res: RawResponse
  try {
    res = await ctx.client.request(method, server.url, path, {
      ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}),
    })
  } catch (err) {
    throw new KeepError('KEEP_UNAVAILABLE', `${server.url}: unreachable (${describeNetError(err)})`)
  }
  if (res.status === 200) return res
  const reason = await reasonOf(res.body)
  const code = codeForStatus(res.status, 'admin')
  if (code === 'KEEP_UNAUTHORIZED' || code === 'KEEP_FORBIDDEN') {
    throw new KeepError(code, `${server.url}: permission denied (${res.status} ${reason}): set KEEP_TOKEN to the cluster's systemRootToken`)
  }
  throw new KeepError(code, `${server.url}: ${method} ${path}: ${res.status} ${reason}`.trim())
}

export async function adminJson<T>(ctx: ClientContext, server: KeepstoreConfig, path: string): Promise<T> {
  const res = await adminRequest(ctx, server, 'GET', path)
  return (await res.body.json()) as T
}
