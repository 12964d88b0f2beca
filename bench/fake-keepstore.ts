/**
 * A cheap stand-in keepstore for the datamanager benchmark: one mount whose
 * index of N blocks is generated deterministically, sorted, into a temporary
 * file (so serving it costs the fake almost no CPU), with the per-prefix
 * digests computed as it is written, so they always match what the index
 * serves. Serves GET /mounts, GET /mounts/<uuid>/blocks[/<3-hex prefix>]
 * (then the final empty line), GET /mounts/<uuid>/digests, accepts PUT /pull
 * and PUT /trash (read and dropped), and `POST /bench/change?fraction=F&seed=S`,
 * which rewrites the index with a fraction F of its blocks changed (a third
 * deleted, a third touched, a third joined by a new block) and answers once
 * the new index and digests are in place.
 *
 * Run as a child process: `node dist/bench/fake-keepstore.js <blocks> <mount uuid> <mtime offset> <dir> [<shared index>]`;
 * it prints `{"port": N}` on stdout once listening, and exits on SIGTERM.
 *
 * With `<shared index>` (the file another fake, with mtime offset 0, generated), the fake writes nothing:
 * it serves that file with its own offset added to each line's mtime on the way out (every line is
 * {@link LINE_BYTES} long, the offset a whole number of {@link PATCH_UNIT} ns, below 10 units), and
 * hashes it so patched for its digests: three replicas of 100 M blocks then take one file, not three.
 * A shared fake does not take `POST /bench/change`.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { EMPTY_SHA256, formatDigestLine, INDEX_PREFIXES } from '../shared/index-digests.js'

const TWO_48 = 2 ** 48
/** A fixed, old mtime (ns): every block is past any TTL. */
export const BASE_MTIME = 1_600_000_000_000_000_000n

/** Every index line: 32 hex, `+`, a 7-digit size (1 MiB + i % 4096), a space, a 19-digit mtime, `\n`. */
export const LINE_BYTES = 61
/** A shared index's mtime offsets are whole multiples of this (ns): one digit of the mtime, never carried. */
export const PATCH_UNIT = 1_000_000
/** Where in a line that digit is: the 7th of the mtime's 19 from its end. */
const PATCH_AT = 41 + 19 - 7

/** Adds `add` to the patched digit of every line in `chunk`, which starts at byte `position` of the index. */
function patchChunk(chunk: Buffer, position: number, add: number): void {
  let p = (((PATCH_AT - position) % LINE_BYTES) + LINE_BYTES) % LINE_BYTES
  for (; p < chunk.length; p += LINE_BYTES) chunk[p] = chunk[p]! + add
}

/** Per-prefix ranges and digests of a shared index as a fake adding `add` to the patched digit serves it. */
async function describeShared(file: string, add: number): Promise<Generated> {
  const handle = await open(file, 'r')
  const prefixes: PrefixRange[] = INDEX_PREFIXES.map(() => ({ offset: 0, length: 0, blocks: 0, sha256: EMPTY_SHA256 }))
  const buf = Buffer.allocUnsafe(LINE_BYTES * 65536)
  let position = 0
  let current = -1
  let hash = createHash('sha256')
  const close = (end: number): void => {
    const p = prefixes[current]!
    p.length = end - p.offset
    p.blocks = p.length / LINE_BYTES
    p.sha256 = hash.digest('hex')
  }
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, position)
      if (bytesRead === 0) break
      if (bytesRead % LINE_BYTES !== 0) throw new Error(`${file}: not whole ${LINE_BYTES}-byte lines at ${position}`)
      const chunk = buf.subarray(0, bytesRead)
      patchChunk(chunk, position, add)
      let start = 0
      for (let p = 0; p < bytesRead; p += LINE_BYTES) {
        const prefix = parseInt(chunk.toString('latin1', p, p + 3), 16)
        if (prefix === current) continue
        if (current >= 0) {
          hash.update(chunk.subarray(start, p))
          close(position + p)
        }
        current = prefix
        hash = createHash('sha256')
        start = p
        prefixes[prefix]!.offset = position + p
      }
      hash.update(chunk.subarray(start))
      position += bytesRead
    }
    if (current >= 0) close(position)
  } finally {
    await handle.close()
  }
  const digests = `${prefixes.map((p, i) => formatDigestLine(INDEX_PREFIXES[i]!, { blocks: p.blocks, sha256: p.sha256 })).join('')}\n`
  return { file, prefixes, digests, bytes: position }
}

/**
 * Hash of block `i` of `n`: 12 hex digits that grow with `i` (so the
 * index is sorted by construction, and spread over the whole hash space),
 * then 20 pseudo-random ones.
 */
export function blockHash(i: number, n: number): string {
  return blockHead(i, n) + blockTail(i)
}

function blockHead(i: number, n: number): string {
  return Math.floor((i * TWO_48) / n)
    .toString(16)
    .padStart(12, '0')
}

function blockTail(i: number): string {
  let x = (i + 0x9e3779b9) | 0
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
  const a = ((x ^ (x >>> 16)) >>> 0).toString(16).padStart(8, '0')
  let y = Math.imul(x ^ 0x27d4eb2f, 0x165667b1)
  y ^= y >>> 15
  const b = (y >>> 0).toString(16).padStart(8, '0')
  const c = (((i * 2654435761) >>> 16) & 0xffff).toString(16).padStart(4, '0')
  return a + b + c
}

/** Size of block `i`: 1 MiB plus a little, so byte totals are plausible. */
export function blockSize(i: number): number {
  return 1_048_576 + (i % 4096)
}

/** Which blocks a change touches: `fraction` of them, picked by a hash of (i, seed); kind 0 deleted, 1 touched, 2 joined by a new block. */
export function changeOf(i: number, change: { fraction: number; seed: number } | undefined): -1 | 0 | 1 | 2 {
  if (change === undefined || change.fraction <= 0) return -1
  let x = Math.imul(i ^ change.seed, 0x9e3779b1)
  x = Math.imul(x ^ (x >>> 15), 0x85ebca6b)
  x ^= x >>> 13
  const u = (x >>> 0) / 2 ** 32
  if (u >= change.fraction) return -1
  return Math.floor((u / change.fraction) * 3) as 0 | 1 | 2
}

/** The new block a change adds beside block `i`: same leading digits (so it sorts next to it), another tail. */
export function addedHash(i: number, n: number): string {
  return blockHead(i, n) + blockTail(i + 0x5bd1e995)
}

interface PrefixRange {
  offset: number
  length: number
  blocks: number
  sha256: string
}

interface Generated {
  file: string
  prefixes: PrefixRange[]
  digests: string
  bytes: number
}

/** Writes the mount's index (without the final empty line) to `file`, prefix by prefix, hashing each prefix's lines. */
async function generate(file: string, n: number, base: bigint, change: { fraction: number; seed: number } | undefined): Promise<Generated> {
  const handle = await open(file, 'w')
  const prefixes: PrefixRange[] = INDEX_PREFIXES.map(() => ({ offset: 0, length: 0, blocks: 0, sha256: EMPTY_SHA256 }))
  const buf = Buffer.allocUnsafe(4 << 20)
  const high = (base / 1_000_000_000n).toString()
  const low = Number(base % 1_000_000_000n)
  let used = 0
  let written = 0
  let current = -1
  let hash = createHash('sha256')
  let start = 0 // where the current prefix's unhashed lines start in buf
  const closePrefix = (): void => {
    if (current < 0) return
    hash.update(buf.subarray(start, used))
    const p = prefixes[current]!
    p.length = written + used - p.offset
    p.sha256 = hash.digest('hex')
  }
  const line = (h: string, size: number, mtimeLow: number): void => {
    const prefix = parseInt(h.slice(0, 3), 16)
    if (prefix !== current) {
      closePrefix()
      current = prefix
      hash = createHash('sha256')
      start = used
      prefixes[prefix]!.offset = written + used
    }
    prefixes[prefix]!.blocks++
    used += buf.write(`${h}+${size} ${high}${String(mtimeLow).padStart(9, '0')}\n`, used, 'latin1')
  }
  for (let i = 0; i < n; i++) {
    const kind = changeOf(i, change)
    const h = blockHash(i, n)
    const mtime = low + (i % 1000) + (kind === 1 ? 1_000_000 : 0)
    if (kind === 2) {
      // The new block shares block i's leading digits: it sorts right before or right after it.
      const extra = addedHash(i, n)
      if (extra < h) line(extra, blockSize(i), low + 7)
      line(h, blockSize(i), mtime)
      if (extra > h) line(extra, blockSize(i), low + 7)
    } else if (kind !== 0) {
      line(h, blockSize(i), mtime)
    }
    if (used > buf.length - 256) {
      if (current >= 0) hash.update(buf.subarray(start, used))
      await handle.write(buf, 0, used)
      written += used
      used = 0
      start = 0
    }
  }
  closePrefix()
  await handle.write(buf, 0, used)
  written += used
  await handle.close()
  const digests = `${prefixes.map((p, i) => formatDigestLine(INDEX_PREFIXES[i]!, { blocks: p.blocks, sha256: p.sha256 })).join('')}\n`
  return { file, prefixes, digests, bytes: written }
}

function serve(n: number, mount: string, base: bigint, dir: string, shared?: { file: string; add: number }): Promise<http.Server> {
  const mountsJson = JSON.stringify([
    { uuid: mount, device_id: `fake:${mount}`, allow_write: true, allow_trash: true, replication: 1, storage_classes: { default: true }, priority: 0 },
  ])
  let generation = 0
  let index: Generated | undefined
  const regenerate = async (change?: { fraction: number; seed: number }): Promise<void> => {
    const next = await generate(path.join(dir, `${mount}.${generation++}.idx`), n, base, change)
    const old = index
    index = next
    if (old !== undefined) await rm(old.file, { force: true })
  }
  const server = http.createServer((req, res) => {
    const url = req.url ?? ''
    if (req.method === 'GET' && url === '/mounts') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(mountsJson)
      return
    }
    if (req.method === 'GET' && url === `/mounts/${mount}/digests`) {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(index!.digests)
      return
    }
    const m = /^\/mounts\/([^/]+)\/blocks(?:\/([0-9a-f]{3}))?$/.exec(url)
    if (req.method === 'GET' && m !== null && m[1] === mount) {
      const range = m[2] === undefined ? { offset: 0, length: index!.bytes } : index!.prefixes[parseInt(m[2], 16)]!
      res.writeHead(200, { 'content-type': 'text/plain' })
      if (range.length === 0) {
        res.end('\n')
        return
      }
      const stream = createReadStream(index!.file, { start: range.offset, end: range.offset + range.length - 1, highWaterMark: 256 << 10 })
      if (shared !== undefined) {
        let at = range.offset
        stream.on('data', (chunk) => {
          patchChunk(chunk as Buffer, at, shared.add)
          at += chunk.length
        })
      }
      stream.on('error', () => res.destroy())
      stream.on('end', () => res.end('\n'))
      stream.pipe(res, { end: false })
      return
    }
    if (req.method === 'PUT' && (url === '/pull' || url === '/trash')) {
      req.resume()
      req.on('end', () => res.end())
      return
    }
    const change = /^\/bench\/change\?fraction=([0-9.]+)&seed=(\d+)$/.exec(url)
    if (req.method === 'POST' && change !== null && shared === undefined) {
      regenerate({ fraction: Number(change[1]), seed: Number(change[2]) }).then(
        () => res.end(JSON.stringify({ bytes: index!.bytes })),
        (err: Error) => {
          res.writeHead(500)
          res.end(`${err.message}\n`)
        },
      )
      return
    }
    res.writeHead(400)
    res.end('Bad Request\n')
  })
  if (shared !== undefined) return describeShared(shared.file, shared.add).then((described) => ((index = described), server))
  return regenerate().then(() => server)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [blocks, mount, offset, dir, sharedFile] = process.argv.slice(2)
  const add = Number(offset ?? '0') / PATCH_UNIT
  if (sharedFile !== undefined && !(Number.isInteger(add) && add >= 0 && add <= 8)) throw new Error(`a shared index's mtime offset must be 0…8 × ${PATCH_UNIT} ns, not ${offset}`)
  const shared = sharedFile === undefined ? undefined : { file: sharedFile, add }
  const server = await serve(Number(blocks), mount ?? 'zzzzz-nyw5e-000000000000000', BASE_MTIME + BigInt(shared ? 0 : (offset ?? '0')), dir ?? process.cwd(), shared)
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`)
  })
  process.on('SIGTERM', () => {
    server.closeAllConnections()
    server.close(() => process.exit(0))
  })
}
