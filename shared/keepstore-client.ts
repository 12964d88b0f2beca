import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { KeepError } from './errors.js'

function* pieces(json: Iterable<string>): Generator<Buffer> {
  for (const piece of json) yield Buffer.from(piece)
}

export interface KeepstoreClientOptions {
  /** Injected for tests; default: one shared keep-alive Agent. */
  dispatcher?: Dispatcher
  token?: string
  connectTimeoutMs?: number
  headersTimeoutMs?: number
  bodyTimeoutMs?: number
}

export interface RequestOptions {
  signal?: AbortSignal
  token?: string
  /** Extra request headers (e.g. `X-Keep-Fence` on a list). */
  headers?: Record<string, string>
}

export interface RawRequestOptions extends RequestOptions {
  body?: string | Buffer | Readable
}

/** An answer of any status; the body is the caller's to consume or `dump()`. */
export interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Dispatcher.ResponseData['body']
}

/**
 * undici's Agent and its request API, from their own modules rather than the
 * package index: the index also sets up fetch, WebSocket and cookies, whose
 * look at `globalThis.Headers` makes Node compile its own bundled copy of
 * undici — ~0.15 s of CPU in every process that makes a request (each `keep`
 * run, each datamanager run). The API methods are mixed into Dispatcher as
 * the index itself does (undici is pinned in package-lock.json).
 */
async function loadAgent(): Promise<typeof import('undici').Agent> {
  const [agent, dispatcher, api] = await Promise.all([
    import('undici/lib/dispatcher/agent.js'),
    import('undici/lib/dispatcher/dispatcher.js'),
    import('undici/lib/api/index.js'),
  ])
  Object.assign(dispatcher.default.prototype, api.default)
  return agent.default
}

/**
 * HTTP client for keepstores (undici). Every method consumes or hands over the
 * response body, so no socket is left busy. Non-2xx → KeepError whose message
 * starts with the status (`404 block not found`): `KEEP_BLOCK_NOT_FOUND` for
 * a 404, `KEEP_FENCED` for a 409 (a list refused for its fence), else
 * `KEEP_UNAVAILABLE`.
 */
export class KeepstoreClient {
  private dispatcher: Promise<Dispatcher> | undefined
  private readonly ownsDispatcher: boolean
  private readonly token: string | undefined
  private readonly options: KeepstoreClientOptions

  constructor(options: KeepstoreClientOptions = {}) {
    this.ownsDispatcher = options.dispatcher === undefined
    this.dispatcher = options.dispatcher === undefined ? undefined : Promise.resolve(options.dispatcher)
    this.token = options.token
    this.options = options
  }

  /**
   * undici is loaded with the first request: a keepstore that never pulls
   * (most starts in tests, every start until a pull list arrives) does not
   * pay ~0.15 s of CPU to compile it.
   */
  private agent(): Promise<Dispatcher> {
    this.dispatcher ??= loadAgent().then(
      (Agent) =>
        new Agent({
          keepAliveTimeout: 30_000,
          connectTimeout: this.options.connectTimeoutMs ?? 10_000,
          headersTimeout: this.options.headersTimeoutMs ?? 60_000,
          bodyTimeout: this.options.bodyTimeoutMs ?? 120_000,
          connections: 64,
        }),
    )
    return this.dispatcher
  }

  /** GET a block: resolves once headers arrive with 200; the body is the caller's to consume. */
  async getBlock(server: string, locator: string, options: RequestOptions = {}): Promise<Readable> {
    const res = await this.send('GET', server, `/${locator}`, undefined, options)
    return res.body as unknown as Readable
  }

  /**
   * PUT a JSON body (pull or trash list); resolves when the server answered 200.
   * An iterable of string pieces is streamed (chunked), so a list of 100 k items
   * need not exist as one string; iterate it afresh for each call.
   */
  async putJson(server: string, path: string, json: string | Iterable<string>, options: RequestOptions = {}): Promise<void> {
    const body = typeof json === 'string' ? json : Readable.from(pieces(json), { objectMode: false })
    const res = await this.send('PUT', server, path, body, options, { 'content-type': 'application/json' })
    await res.body.dump()
  }

  /** GET and parse a JSON document (e.g. /mounts). */
  async getJson<T = unknown>(server: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.send('GET', server, path, undefined, options)
    return (await res.body.json()) as T
  }

  /** GET a streamed text body (e.g. an index); the caller consumes it. */
  async getStream(server: string, path: string, options: RequestOptions = {}): Promise<Readable> {
    const res = await this.send('GET', server, path, undefined, options)
    return res.body as unknown as Readable
  }

  /**
   * One request whatever the answer: only a failure to get an answer at all
   * (refused, reset, timed out) throws, as `KEEP_UNAVAILABLE`. For callers
   * that act on the status themselves (the `keep` client: failover, 503
   * backoff, permission errors).
   */
  async request(method: 'GET' | 'HEAD' | 'PUT', server: string, path: string, options: RawRequestOptions = {}): Promise<RawResponse> {
    const res = await this.dispatch(method, server, path, options.body, options)
    return { status: res.statusCode, headers: res.headers, body: res.body }
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher && this.dispatcher !== undefined) await (await this.dispatcher).close()
  }

  private async send(
    method: 'GET' | 'PUT',
    server: string,
    path: string,
    body: string | Readable | undefined,
    options: RequestOptions,
    extraHeaders: Record<string, string> = {},
  ): Promise<Dispatcher.ResponseData> {
    const res = await this.dispatch(method, server, path, body, options, extraHeaders)
    if (res.statusCode !== 200) {
      const text = (await res.body.text().catch(() => '')).split('\n')[0]?.slice(0, 200) ?? ''
      const code = res.statusCode === 404 ? 'KEEP_BLOCK_NOT_FOUND' : res.statusCode === 409 ? 'KEEP_FENCED' : 'KEEP_UNAVAILABLE'
      throw new KeepError(code, `${res.statusCode} ${text}`.trim())
    }
    return res
  }

  private async dispatch(
    method: 'GET' | 'HEAD' | 'PUT',
    server: string,
    path: string,
    body: string | Buffer | Readable | undefined,
    options: RequestOptions,
    extraHeaders: Record<string, string> = {},
  ): Promise<Dispatcher.ResponseData> {
    const token = options.token ?? this.token
    const headers: Record<string, string> = { ...extraHeaders, ...options.headers }
    if (token) headers.authorization = `Bearer ${token}`
    let res: Dispatcher.ResponseData
    try {
      const url = new URL(path, server)
      res = await (await this.agent()).request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      })
    } catch (err) {
      const reason = (err as { code?: string }).code ?? (err as Error).message
      throw new KeepError('KEEP_UNAVAILABLE', `${server}: ${reason}`, { cause: err })
    }
    return res
  }
}
