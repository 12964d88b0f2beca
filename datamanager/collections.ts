import { createReadStream } from 'node:fs'
import { open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { StringDecoder } from 'node:string_decoder'
import { z } from 'zod'
import { parseManifest, type ManifestRefs } from './manifest.js'

/** One valid collection record (PROTOCOL §7), reduced to what balancing needs. */
export interface ParsedCollection {
  uuid: string
  /** `replication_desired`, or the cluster's `defaultReplication` when null or absent. */
  replication: number
  /** `storage_classes_desired`, sorted and unique; `['default']` when missing or empty. */
  classes: readonly string[]
  refs: ManifestRefs
}

/** Where the references go (the reference spill); a returned promise is awaited before the next record. */
export interface CollectionSink {
  addCollection(collection: ParsedCollection): void | Promise<void>
}

export interface MalformedRecord {
  file: string
  /** 1-based line of a `.jsonl` file; for a `.json` file, the line where parsing failed, else 1. */
  line: number
  reason: string
}

export interface TooLargeRecord {
  file: string
  line: number
  uuid: string | undefined
  /** Bytes of the record (a `.jsonl` line: at least this many; it was not read to its end). */
  bytes: number
}

export interface CollectionsSummary {
  files: number
  /** Valid records read. */
  collections: number
  /** Locator tokens counted (the empty block excluded). */
  references: number
  malformed: number
  /** The first few malformed records, for the report and the log. */
  malformedRecords: MalformedRecord[]
  /** Records over `maxRecordBytes` (skipped unread; the run refuses). */
  tooLarge: number
  /** The first few of them: uuid when it could be read from the record's start, else file and line. */
  tooLargeRecords: TooLargeRecord[]
  /** Set when the source itself could not be read (missing file or directory, permissions). */
  unreadable: string | undefined
}

export interface ScanOptions {
  defaultReplication: number
  /** Called now and then with the bytes read so far and the total (for a progress line). */
  onProgress?(bytesRead: number, totalBytes: number): void
  /** A larger record is refused (`tooLarge`); default 256 MiB. */
  maxRecordBytes?: number
  /** Stops the scan (the run's deadline); the summary then says `stopped`. */
  signal?: AbortSignal
}

const MAX_MALFORMED_LISTED = 20
const DEFAULT_MAX_RECORD_BYTES = 256 * 1024 * 1024
/** The start of an oversized record kept to find its uuid in (the rest is skipped unread). */
const HEAD_BYTES = 64 * 1024
/** Longer lines are read again from the file in one piece rather than assembled from chunks. */
const LONG_LINE = 1 << 20
const DEFAULT_CLASSES: readonly string[] = ['default']

const recordSchema = z.object({
  uuid: z.string().regex(/^\S+$/, 'uuid must be a non-empty string without spaces'),
  manifest_text: z.string(),
  replication_desired: z.number().int().min(0).nullish(),
  storage_classes_desired: z.array(z.string().min(1)).nullish(),
})

/**
 * Reads every collection record of `source` — a `.jsonl` file (one record per
 * line), a `.json` file (one record or an array), or a directory of such
 * files (not recursive, dot-files skipped, in name order) — and hands each
 * valid record to `sink`. A malformed record is counted with its file and
 * line and skipped: the caller refuses to trash when any was seen. Never
 * throws for bad input; an unreadable source is reported in the summary.
 */
export async function scanCollections(source: string, sink: CollectionSink, options: ScanOptions): Promise<CollectionsSummary> {
  const summary: CollectionsSummary = {
    files: 0,
    collections: 0,
    references: 0,
    malformed: 0,
    malformedRecords: [],
    tooLarge: 0,
    tooLargeRecords: [],
    unreadable: undefined,
  }
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES
  let files: Array<{ file: string; size: number }>
  try {
    files = await listCollectionFiles(source)
  } catch (err) {
    summary.unreadable = `${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`
    return summary
  }
  const total = files.reduce((n, f) => n + f.size, 0)
  let done = 0
  const scanner = createRecordScanner(summary, sink, options.defaultReplication, maxRecordBytes)
  const signal = options.signal
  for (const { file, size } of files) {
    if (signal?.aborted) {
      summary.unreadable = 'stopped at the run deadline'
      return summary
    }
    summary.files++
    try {
      if (file.endsWith('.jsonl')) {
        await scanJsonLines(file, scanner, maxRecordBytes, (bytes) => options.onProgress?.(done + bytes, total), signal)
      } else {
        await scanJsonFile(file, scanner)
      }
      if (signal?.aborted) {
        summary.unreadable = 'stopped at the run deadline'
        return summary
      }
    } catch (err) {
      summary.unreadable = `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`
      return summary
    }
    done += size
    options.onProgress?.(done, total)
  }
  return summary
}

/** The files a scan of `source` reads, in that order (a file, or a directory's `*.json` / `*.jsonl`); throws when unreadable. */
export async function listCollectionFiles(source: string): Promise<Array<{ file: string; size: number }>> {
  const info = await stat(source)
  if (!info.isDirectory()) return [{ file: source, size: info.size }]
  const names = (await readdir(source)).filter((n) => !n.startsWith('.') && /\.jsonl?$/.test(n)).sort()
  const out: Array<{ file: string; size: number }> = []
  for (const name of names) {
    const file = path.join(source, name)
    const s = await stat(file)
    if (s.isFile()) out.push({ file, size: s.size })
  }
  return out
}

interface RecordScanner {
  record(record: unknown, file: string, line: number): void | Promise<void>
  invalidJson(file: string, line: number, err: unknown): void
  tooLarge(record: TooLargeRecord): void
}

function createRecordScanner(summary: CollectionsSummary, sink: CollectionSink, defaultReplication: number, maxRecordBytes: number): RecordScanner {
  const invalidJson = (file: string, line: number, err: unknown): void => {
    const reason = (err as Error).message.split('\n')[0] ?? ''
    malformed(summary, { file, line, reason: `invalid JSON: ${reason.replace(/ (?:in JSON )?at position \d+.*$| \(line \d+ column \d+\)$/, '')}` })
  }
  const record = (record: unknown, file: string, line: number): void | Promise<void> => {
    const parsed = recordSchema.safeParse(record)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `
      return malformed(summary, { file, line, reason: `${where}${issue?.message ?? 'invalid record'}` })
    }
    const text = parsed.data.manifest_text
    // A record of a .json file is measured by its manifest (the rest of it is small); a .jsonl line was measured as read.
    if (text.length > maxRecordBytes / 3 && Buffer.byteLength(text) > maxRecordBytes) {
      return tooLarge({ file, line, uuid: parsed.data.uuid, bytes: Buffer.byteLength(text) })
    }
    const refs = parseManifest(text)
    if (typeof refs === 'string') return malformed(summary, { file, line, reason: `${parsed.data.uuid}: ${refs}` })
    const wanted = parsed.data.storage_classes_desired
    summary.collections++
    summary.references += refs.count
    return sink.addCollection({
      uuid: parsed.data.uuid,
      replication: parsed.data.replication_desired ?? defaultReplication,
      classes: wanted === undefined || wanted === null || wanted.length === 0 ? DEFAULT_CLASSES : [...new Set(wanted)].sort(),
      refs,
    })
  }
  const tooLarge = (record: TooLargeRecord): void => {
    summary.tooLarge++
    if (summary.tooLargeRecords.length < MAX_MALFORMED_LISTED) summary.tooLargeRecords.push(record)
  }
  return { record, invalidJson, tooLarge }
}

function malformed(summary: CollectionsSummary, record: MalformedRecord): void {
  summary.malformed++
  if (summary.malformedRecords.length < MAX_MALFORMED_LISTED) summary.malformedRecords.push(record)
}

/**
 * Reads a `.jsonl` file line by line from its bytes. A short line is decoded
 * as it arrives and joined once. A line past 1 MiB is only counted as it
 * streams by and then read again from the file in one piece, so it exists
 * once as bytes (freed at once) and once as text: with the parsed copy of
 * its manifest, a record costs about twice its size. A line passing
 * `maxRecordBytes` is never held: its first 64 KiB name its uuid, the rest is
 * skipped to the next newline.
 */
async function scanJsonLines(
  file: string,
  scan: RecordScanner,
  maxRecordBytes: number,
  onBytes: (bytes: number) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const stream = createReadStream(file, { highWaterMark: 1 << 20 })
  const decoder = new StringDecoder('utf8')
  let handle: FileHandle | undefined
  let pieces: string[] = []
  let mode: 'short' | 'long' | 'oversize' = 'short'
  let lineStart = 0
  let lineBytes = 0
  let head = ''
  let lineNo = 0
  let bytes = 0
  let reported = 0
  const lineText = async (): Promise<string> => {
    if (mode === 'short') return pieces.length === 1 ? pieces[0]! : pieces.join('')
    handle ??= await open(file, 'r')
    let buf: Buffer | undefined = Buffer.allocUnsafe(lineBytes)
    for (let got = 0; got < lineBytes; ) {
      const { bytesRead } = await handle.read(buf, got, lineBytes - got, lineStart + got)
      if (bytesRead === 0) throw new Error('file changed while read')
      got += bytesRead
    }
    const text = buf.toString('utf8')
    buf = undefined
    return text
  }
  const endLine = async (): Promise<void> => {
    lineNo++
    if (mode === 'oversize') {
      scan.tooLarge({ file, line: lineNo, uuid: uuidIn(head), bytes: lineBytes })
    } else {
      if (mode === 'short') pieces.push(decoder.end())
      let text: string | undefined = await lineText()
      pieces = []
      if (!BLANK_RE.test(text)) {
        // parseLine parses before its first await; the line is not held while the record is added.
        const pending = parseLine(scan, text, file, lineNo)
        text = undefined
        await pending
      }
    }
    pieces = []
    mode = 'short'
    lineBytes = 0
    head = ''
  }
  const take = (chunk: Buffer, start: number, end: number): void => {
    if (end === start) return
    lineBytes += end - start
    if (mode === 'oversize') return
    if (lineBytes > maxRecordBytes || lineBytes > LONG_LINE) {
      if (mode === 'short') {
        pieces.push(decoder.end(chunk.subarray(start, Math.min(end, start + HEAD_BYTES))))
        head = pieces.join('').slice(0, HEAD_BYTES)
        pieces = []
      }
      mode = lineBytes > maxRecordBytes ? 'oversize' : 'long'
      return
    }
    pieces.push(decoder.write(chunk.subarray(start, end)))
  }
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (signal?.aborted) return
      const offset = bytes
      bytes += chunk.length
      let pos = 0
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, pos)) {
        take(chunk, pos, nl)
        await endLine()
        pos = nl + 1
        lineStart = offset + pos
      }
      take(chunk, pos, chunk.length)
      if (bytes - reported >= 1 << 20) {
        reported = bytes
        onBytes(bytes)
      }
    }
    if (lineBytes > 0) await endLine()
  } finally {
    stream.destroy()
    await handle?.close()
  }
}

const BLANK_RE = /^\s*$/

async function parseLine(scan: RecordScanner, text: string, file: string, lineNo: number): Promise<void> {
  let record: unknown
  try {
    // A final CR is whitespace to JSON: CRLF files read the same.
    record = JSON.parse(text)
    text = '' // the line is not needed while the record is added: let it go
  } catch (err) {
    scan.invalidJson(file, lineNo, err)
    return
  }
  const pending = scan.record(record, file, lineNo)
  if (pending !== undefined) await pending
}

/** The uuid of a record from its first bytes, when a top-level-looking `"uuid": "…"` is there. */
function uuidIn(head: string): string | undefined {
  const m = /"uuid"\s*:\s*("(?:[^"\\]|\\.){1,200}")/.exec(head)
  if (m === null) return undefined
  try {
    return JSON.parse(m[1]!) as string
  } catch {
    return undefined
  }
}

/** A `.json` file is read whole; each record is measured by its manifest's bytes. */
async function scanJsonFile(file: string, scan: RecordScanner): Promise<void> {
  const text = await readFile(file, 'utf8')
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    scan.invalidJson(file, errorLine(text, (err as Error).message), err)
    return
  }
  for (const record of Array.isArray(doc) ? doc : [doc]) await scan.record(record, file, 1)
}

/** The line of a JSON.parse error: Node 20 gives `at position N`, later versions `(line L column C)`. */
function errorLine(text: string, message: string): number {
  const line = /line (\d+)/.exec(message)?.[1]
  if (line !== undefined) return Number(line)
  const position = /at position (\d+)/.exec(message)?.[1]
  if (position === undefined) return 1
  let n = 1
  for (let i = text.indexOf('\n'); i !== -1 && i < Number(position); i = text.indexOf('\n', i + 1)) n++
  return n
}
