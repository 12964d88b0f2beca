import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig, keepstoreByOrigin, type Config, type KeepstoreConfig } from '../shared/config.js'
import { KeepError, type KeepErrorCode } from '../shared/errors.js'
import { KeepstoreClient } from '../shared/keepstore-client.js'
import { createSigner, type Signer } from '../shared/signer.js'

/** What every command works with: the cluster, a token, one HTTP client, the signer when the key is at hand. */
export interface ClientContext {
  config: Config
  token: string
  client: KeepstoreClient
  /** Present when blobSigning is on and the config holds the key: GET locators are signed locally. */
  signer: Signer | undefined
  close(): Promise<void>
}

export interface ContextOptions {
  /** `--config`, else `KEEP_CONFIG`, else ./var/cluster.yml, else var/cluster.yml of this repository. */
  config?: string | undefined
  env?: NodeJS.ProcessEnv
}

/** A keepstore that does not accept a connection this long is unreachable. */
export const CONNECT_TIMEOUT_MS = 5_000
/** An answer (its head, or the next bytes of its body) this late: the server is given up on. */
export const IDLE_TIMEOUT_MS = 120_000

/** Compiled to dist/client/: the repository is two levels up. */
const REPO_VAR_CONFIG = fileURLToPath(new URL('../../var/cluster.yml', import.meta.url))

/** The config file to read, or a usage error saying where we looked. */
export function configPath(options: ContextOptions): string {
  const env = options.env ?? process.env
  const given = options.config ?? env.KEEP_CONFIG
  if (given) return given
  const local = path.resolve('var/cluster.yml')
  for (const candidate of [local, REPO_VAR_CONFIG]) if (existsSync(candidate)) return candidate
  throw new KeepError('KEEP_CONFIG', 'config: no config file: give --config FILE or set KEEP_CONFIG (npm start writes var/cluster.yml)')
}

export async function createContext(options: ContextOptions): Promise<ClientContext> {
  const env = options.env ?? process.env
  const config = await loadConfig(configPath(options))
  const { cluster } = config
  const token = env.KEEP_TOKEN || cluster.systemRootToken
  const client = new KeepstoreClient({ token, connectTimeoutMs: CONNECT_TIMEOUT_MS, headersTimeoutMs: IDLE_TIMEOUT_MS, bodyTimeoutMs: IDLE_TIMEOUT_MS })
  const signer =
    cluster.blobSigning && cluster.blobSigningKey !== undefined
      ? createSigner({ key: cluster.blobSigningKey, ttlSeconds: cluster.blobSigningTTLSeconds, maxClockSkewSeconds: cluster.maxClockSkewMs / 1000 })
      : undefined
  return { config, token, client, signer, close: () => client.close() }
}

/** SERVER as a keepstore uuid or url of the config. */
export function findServer(config: Config, server: string): KeepstoreConfig {
  const found = config.keepstores.find((ks) => ks.uuid === server) ?? keepstoreByOrigin(config, server)
  if (found) return found
  const known = config.keepstores.map((ks) => ks.uuid).join(', ')
  throw new KeepError('KEEP_BAD_REQUEST', `unknown keepstore ${JSON.stringify(server)}: give a uuid or url from the config (${known})`)
}

/** The error code a keepstore's answer stands for (the client validated the locator before asking). */
export function codeForStatus(status: number, what: 'block' | 'admin'): KeepErrorCode {
  switch (status) {
    case 400:
      // A locator we checked ourselves comes back 400 only for its signature.
      return what === 'block' ? 'KEEP_INVALID_SIGNATURE' : 'KEEP_BAD_REQUEST'
    case 401:
      return 'KEEP_UNAUTHORIZED'
    case 403:
      return 'KEEP_FORBIDDEN'
    case 404:
      return what === 'block' ? 'KEEP_BLOCK_NOT_FOUND' : 'KEEP_NOT_FOUND'
    case 413:
      return 'KEEP_TOO_LARGE'
    case 502:
      return 'KEEP_CORRUPT'
    case 503:
      return 'KEEP_UNAVAILABLE'
    case 507:
      return 'KEEP_FULL'
    default:
      return 'KEEP_INTERNAL'
  }
}

/** The first line of an error body, short enough for one line on stderr. */
export async function reasonOf(body: { text(): Promise<string> }): Promise<string> {
  const text = await body.text().catch(() => '')
  return (text.split('\n')[0] ?? '').slice(0, 200).trim()
}

const NET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  UND_ERR_CONNECT_TIMEOUT: 'connect timeout',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'body stalled',
  UND_ERR_SOCKET: 'connection closed',
}

/** `connection refused` for a KEEP_UNAVAILABLE from the keepstore client (`http://h:p: ECONNREFUSED`). */
export function describeNetError(err: unknown): string {
  const cause = (err as { cause?: { code?: string } }).cause
  const code = cause?.code ?? (err as { code?: string }).code
  if (code !== undefined && NET_ERRORS[code]) return NET_ERRORS[code]!
  return (err as Error).message.replace(/^\w+:\/\/\S+: /, '')
}
