import type Koa from 'koa'
import type { Keepstore } from '../keepstore.js'
import type { KeepstoreMetrics } from '../metrics.js'
import type { Logger } from '../../shared/logger.js'
import { tokenFromAuthorization, requireToken } from '../../shared/auth.js'
import type { WorklistSet } from '../worklists.js'
import type { Scrubber } from '../scrubber.js'
import type { MembershipView } from '../../shared/membership.js'

/** What every handler may reach: the core, the worklists and the observability hooks. */
export interface AppDeps {
  keepstore: Keepstore
  worklists: WorklistSet | undefined
  metrics: KeepstoreMetrics
  logger: Logger
  version: string
  scrubber?: Scrubber
  /** A request body that sends nothing this long is cut (undefined: never). */
  bodyIdleTimeoutMs?: number
  /** With `cluster.etcd`: who is live (GET /status). */
  membership?: MembershipView
}

export interface KeepState {
  requestId: string
  route: string
  token: string | undefined
  bytesIn: number
  bytesOut: number
}

export type KeepContext = Koa.ParameterizedContext<KeepState> & { params: Record<string, string> }

export function tokenOf(ctx: { get(name: string): string }): string | undefined {
  return tokenFromAuthorization(ctx.get('authorization') || undefined)
}

/** admin = the request's token equals systemRootToken (constant time): none → 401, other → 403. */
export function requireAdmin(ctx: KeepContext, deps: AppDeps): void {
  requireToken(ctx.state.token, deps.keepstore.cluster.systemRootToken)
}
