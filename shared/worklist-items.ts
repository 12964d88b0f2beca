import { createHash } from 'node:crypto'
import { z } from 'zod'
import { KeepError } from './errors.js'
import { parseLocator } from './locator.js'
import { type Ranges, arrayElements, invalidJson, parseJson, quoteNumbers } from './json-scan.js'

/** One entry of a pull list (PROTOCOL §4): copy `locator` from the first of `servers` that has it. */
export interface PullItem {
  locator: string
  /** Keepstore base URLs, tried in this order, each once. */
  servers: string[]
  /** Target mount; absent = the first writable mount in rendezvous order. */
  mount_uuid?: string
}

/** One entry of a trash list (PROTOCOL §5). */
export interface TrashItem {
  locator: string
  /** The mtime the sender saw, nanoseconds since the epoch; trashed only on an exact match. */
  block_mtime: bigint
  /** Absent = every trashable mount. */
  mount_uuid?: string
}

/** What a list is checked against: the cluster config of the receiving keepstore. */
export interface ListContext {
  /** True when `url` is the URL of a keepstore of this cluster (compared by origin). */
  isKnownServer(url: string): boolean
  /** True when `uuid` is a mount of the receiving keepstore. */
  isKnownMount(uuid: string): boolean
}

/** How a worklist persists one item: a string that {@link ItemCodec.decode} turns back into it. */
export interface ItemCodec<T> {
  encode(item: T): string
  decode(text: string): T
}

/** int64, as Keep's Go structs hold `block_mtime`. */
const MAX_MTIME = 2n ** 63n - 1n
const INTEGER_RE = /^[0-9]+$/

type Issues = Array<z.core.$ZodRawIssue>

function fail(issues: Issues, input: unknown, message: string): typeof z.NEVER {
  issues.push({ code: 'custom', message, input })
  return z.NEVER
}

const requiredString = (): z.ZodString =>
  z.string({ error: (iss) => (iss.input === undefined ? 'missing' : 'not a string') })

const locatorSchema = requiredString().superRefine((text, ctx) => {
  try {
    if (parseLocator(text).size === undefined) fail(ctx.issues, text, 'no size hint')
  } catch (err) {
    fail(ctx.issues, text, err instanceof Error ? err.message : String(err))
  }
})

/**
 * `uuid` itself when it names a mount of the receiving keepstore, else
 * undefined; one string per mount, not one per item (a 64 MiB list names a
 * few mounts 300 k times).
 */
function knownMounts(ctx: ListContext): (uuid: string) => string | undefined {
  const known = new Map<string, string>()
  return (uuid) => {
    const same = known.get(uuid)
    if (same !== undefined) return same
    if (!ctx.isKnownMount(uuid)) return undefined
    if (known.size < 1024) known.set(uuid, uuid)
    return uuid
  }
}

/** Keep's Go clients send `""` (or null) for "no mount": both mean absent. */
function mountSchema(mounts: (uuid: string) => string | undefined) {
  return z
    .string({ error: 'not a string' })
    .nullish()
    .transform((uuid, c) => {
      if (uuid === null || uuid === undefined || uuid === '') return undefined
      return mounts(uuid) ?? fail(c.issues, uuid, `unknown mount ${uuid}`)
    })
}

function serverSchema(ctx: ListContext) {
  return requiredString().superRefine((text, c) => {
    let url: URL
    try {
      url = new URL(text)
    } catch {
      fail(c.issues, text, `${text} is not a URL`)
      return
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(c.issues, text, `${text} is not an http(s) URL`)
    else if (!ctx.isKnownServer(text)) fail(c.issues, text, `${text} is not a keepstore of this cluster`)
  })
}

/** A JSON number or a decimal string (numbers arrive as their digits, see {@link quoteNumbers}), as an exact bigint. */
const mtimeSchema = z.unknown().transform((value, c): bigint => {
  if (value === undefined) return fail(c.issues, value, 'missing')
  const text = typeof value === 'string' ? value : undefined
  if (text === undefined) return fail(c.issues, value, 'not a number')
  if (!INTEGER_RE.test(text)) return fail(c.issues, value, `${text} is not a non-negative integer`)
  const mtime = BigInt(text)
  if (mtime > MAX_MTIME) return fail(c.issues, value, `${text} is beyond int64`)
  return mtime
})

// z.object (not strictObject): unknown keys on items are ignored and dropped,
// because Keep clients may add fields we have no use for.
function pullItemSchema(ctx: ListContext) {
  return z.object(
    {
      locator: locatorSchema,
      servers: z
        .array(serverSchema(ctx), { error: (iss) => (iss.input === undefined ? 'missing' : 'not an array') })
        .min(1, { error: 'empty' }),
      mount_uuid: mountSchema(knownMounts(ctx)),
    },
    { error: 'not an object' },
  )
}

function trashItemSchema(ctx: ListContext) {
  return z.object({ locator: locatorSchema, block_mtime: mtimeSchema, mount_uuid: mountSchema(knownMounts(ctx)) }, { error: 'not an object' })
}

const TRASH_KEYS = new Set(['locator', 'block_mtime', 'mount_uuid'])

/**
 * A well-formed trash item checked without zod (zod's per-item garbage was a
 * third of what parsing a 64 MiB list cost), giving what the schema would.
 * Anything unusual → undefined, and the schema checks it and says what is wrong.
 */
function quickTrashItem(mounts: (uuid: string) => string | undefined): (value: unknown) => TrashItem | undefined {
  return (value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
    for (const key in value) if (!TRASH_KEYS.has(key)) return undefined
    const { locator, block_mtime: mtime, mount_uuid: uuid } = value as Record<string, unknown>
    if (typeof locator !== 'string' || typeof mtime !== 'string' || !INTEGER_RE.test(mtime)) return undefined
    try {
      if (parseLocator(locator).size === undefined) return undefined
    } catch {
      return undefined
    }
    const blockMtime = BigInt(mtime)
    if (blockMtime > MAX_MTIME) return undefined
    if (uuid === undefined || uuid === null || uuid === '') return { locator, block_mtime: blockMtime }
    const mount = typeof uuid === 'string' ? mounts(uuid) : undefined
    return mount === undefined ? undefined : { locator, block_mtime: blockMtime, mount_uuid: mount }
  }
}

/** `item 3: servers[1]: message`, or just the message for the list itself. */
function issueLine(issue: z.core.$ZodIssue): string {
  const [index, ...rest] = issue.path
  if (index === undefined) return issue.message
  let where = ''
  for (const part of rest) {
    where += typeof part === 'number' ? `[${part}]` : `${where === '' ? '' : '.'}${String(part)}`
  }
  return where === '' ? `item ${String(index)}: ${issue.message}` : `item ${String(index)}: ${where}: ${issue.message}`
}

function invalidItem(issue: z.core.$ZodIssue | undefined, index: number | undefined): KeepError {
  if (issue === undefined) return new KeepError('KEEP_BAD_REQUEST', 'invalid list')
  return new KeepError('KEEP_BAD_REQUEST', issueLine(index === undefined ? issue : { ...issue, path: [index, ...issue.path] }))
}

/**
 * Parses and validates a list item by item: only the items themselves stay in
 * memory, never a parse tree of the whole body beside them (a 64 MiB list
 * cost gigabytes with a whole-body lossless parse). A string body (a stored
 * item) is parsed whole.
 */
function parseList<S extends z.ZodType>(body: string | Uint8Array, item: S): Array<z.output<S>> {
  const buf = typeof body === 'string' ? undefined : Buffer.from(body.buffer, body.byteOffset, body.length)
  const ranges = buf === undefined ? undefined : arrayElements(buf)
  if (buf === undefined || ranges === undefined) {
    const json = parseJson(buf === undefined ? (body as string) : buf.toString('utf8'))
    const result = z.array(item, { error: 'not an array' }).safeParse(json)
    if (!result.success) throw invalidItem(result.error.issues[0], undefined)
    return result.data
  }
  const items = new Array<z.output<S>>(ranges.length)
  for (let index = 0; index < ranges.length; index++) items[index] = parseItem(buf, ranges, index, item)
  return items
}

type Quick<S extends z.ZodType> = (value: unknown) => z.output<S> | undefined

function parseItem<S extends z.ZodType>(buf: Buffer, ranges: Ranges, index: number, item: S, quick?: Quick<S>): z.output<S> {
  const value = parseJson(buf.toString('utf8', ranges.from[index], ranges.to[index]))
  const fast = quick?.(value)
  if (fast !== undefined) return fast
  const result = item.safeParse(value)
  if (!result.success) throw invalidItem(result.error.issues[0], index)
  return result.data
}

/** Items between yields to the event loop while a large list is parsed. */
export const ITEMS_PER_TURN = 2048

/**
 * {@link parseList} for a request body, yielding to the event loop every
 * {@link ITEMS_PER_TURN} items: other requests keep being served while a
 * 64 MiB list is checked, and the garbage collector gets to finish its work
 * instead of letting the heap balloon during one long synchronous loop.
 */
async function parseListAsync<S extends z.ZodType>(body: Uint8Array, item: S, quick?: Quick<S>): Promise<Array<z.output<S>>> {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.length)
  const ranges = arrayElements(buf)
  if (ranges === undefined) return parseList(buf, item)
  const items = new Array<z.output<S>>(ranges.length)
  for (let index = 0; index < ranges.length; index++) {
    if (index % ITEMS_PER_TURN === ITEMS_PER_TURN - 1) await yieldTurn()
    items[index] = parseItem(buf, ranges, index, item, quick)
  }
  return items
}

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

function withoutEmptyMount<T extends { mount_uuid?: string | undefined }>(item: T): T {
  if (item.mount_uuid === undefined) delete item.mount_uuid
  return item
}

/** {@link withoutEmptyMount} on every item, in place (no second array of a large list). */
function withoutEmptyMounts<T extends { mount_uuid?: string | undefined }>(items: T[]): T[] {
  for (const item of items) withoutEmptyMount(item)
  return items
}

/** Validates a `PUT /pull` body (PROTOCOL §4). Throws `KEEP_BAD_REQUEST` with one line saying what and where. */
export function parsePullList(body: string | Uint8Array, ctx: ListContext): PullItem[] {
  return parseList(body, pullItemSchema(ctx)).map(withoutEmptyMount)
}

/** Validates a `PUT /trash` body (PROTOCOL §5). `block_mtime` comes out exact, beyond 2^53. */
export function parseTrashList(body: string | Uint8Array, ctx: ListContext): TrashItem[] {
  return parseList(body, trashItemSchema(ctx)).map(withoutEmptyMount)
}

/** {@link parsePullList} of a request body, yielding to the event loop as it goes. */
export async function parsePullListBody(body: Uint8Array, ctx: ListContext): Promise<PullItem[]> {
  return withoutEmptyMounts(await parseListAsync(body, pullItemSchema(ctx)))
}

/** {@link parseTrashList} of a request body, yielding to the event loop as it goes. */
export async function parseTrashListBody(body: Uint8Array, ctx: ListContext): Promise<TrashItem[]> {
  const mounts = knownMounts(ctx)
  // Without the `mount_uuid` key rather than undefined: what withoutEmptyMounts would leave.
  const quick = quickTrashItem(mounts) as Quick<ReturnType<typeof trashItemSchema>>
  return withoutEmptyMounts(await parseListAsync(body, trashItemSchema(ctx), quick))
}

function pullItemJson(item: PullItem): string {
  const mount = item.mount_uuid === undefined ? '' : `,"mount_uuid":${JSON.stringify(item.mount_uuid)}`
  return `{"locator":${JSON.stringify(item.locator)},"servers":${JSON.stringify(item.servers)}${mount}}`
}

// Built by hand: JSON.stringify cannot write a bigint as a bare number (and Node 20 lacks JSON.rawJSON).
function trashItemJson(item: TrashItem): string {
  const mount = item.mount_uuid === undefined ? '' : `,"mount_uuid":${JSON.stringify(item.mount_uuid)}`
  return `{"locator":${JSON.stringify(item.locator)},"block_mtime":${item.block_mtime.toString()}${mount}}`
}

export function serializePullList(items: PullItem[]): string {
  return `[${items.map(pullItemJson).join(',')}]`
}

/** `block_mtime` is written as a bare JSON number with every digit. */
export function serializeTrashList(items: TrashItem[]): string {
  return `[${items.map(trashItemJson).join(',')}]`
}

/** SHA-256 hex of a list body, as logged and reported by `GET /pull` and `GET /trash`. */
export function listDigest(body: string | Buffer): string {
  return createHash('sha256').update(body).digest('hex')
}

/** Items read back from a keepstore's own state: the cluster may have changed since, so servers and mounts are not checked. */
const ANYTHING: ListContext = { isKnownServer: () => true, isKnownMount: () => true }

function decodeOne<T>(text: string, parseAll: (body: string, ctx: ListContext) => T[]): T {
  const [item] = parseAll(`[${text}]`, ANYTHING)
  if (item === undefined) throw new KeepError('KEEP_BAD_REQUEST', 'empty item')
  return item
}

export const pullItemCodec: ItemCodec<PullItem> = {
  encode: pullItemJson,
  decode: (text) => decodeOne(text, parsePullList),
}

export const trashItemCodec: ItemCodec<TrashItem> = {
  encode: trashItemJson,
  decode: (text) => decodeOne(text, parseTrashList),
}
