import { closeSync, openSync, readFileSync, readSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import { EMPTY_SHA256, INDEX_PREFIXES, sha256hex } from '../shared/index-digests.js'
import type { DecideChunk, DecideInit, DecideReply, PrefixDecision, RecordOnDisk } from './decide-pool.js'
import { IndexParser } from './index-parser.js'
import { mergePrefix, type MountGroup } from './merge.js'
import { indexTopology, OutcomeBuilder } from './outcomes.js'
import { bucketPartition, createReferenceParser, PrefixRefs, referenceLines } from './references.js'
import { createTopology } from './topology.js'

/**
 * A worker thread of {@link DecidePool}: decides chunks of prefixes from
 * stored index lines and references, exactly as the balance pass does on
 * the main thread (the same parser, merge and {@link OutcomeBuilder}), and
 * answers each chunk with its prefixes' outcome texts. Stored bytes that do
 * not check out are a doubt, answered as such: the pass then starts over
 * on the main thread, which handles every doubt as it always has.
 */
const init = workerData as DecideInit
const index = indexTopology(createTopology(init.servers))
const parse = createReferenceParser()
const NEWLINE = Buffer.from('\n')
const handles = new Map<string, number>()

class Doubt extends Error {}

function read(record: RecordOnDisk): Buffer {
  if (record.length === 0) return Buffer.alloc(0)
  let fd = handles.get(record.file)
  if (fd === undefined) {
    fd = openSync(record.file, 'r')
    handles.set(record.file, fd)
  }
  const buf = Buffer.allocUnsafe(record.length)
  let got = 0
  while (got < record.length) {
    const n = readSync(fd, buf, got, record.length - got, record.offset + got)
    if (n === 0) throw new Doubt(`${record.file} is short: ${got} of ${record.length} bytes at ${record.offset}`)
    got += n
  }
  return buf
}

function checked(record: RecordOnDisk, what: string): Buffer {
  let bytes: Buffer
  try {
    bytes = read(record)
  } catch (err) {
    throw new Doubt(`${what}: ${(err as Error).message}`)
  }
  if (sha256hex(bytes) !== record.sha256) throw new Doubt(`${what} do not match their sha256`)
  return bytes
}

function decideChunk(chunk: DecideChunk): PrefixDecision[] {
  let spilled: Array<Map<string, string>> | undefined
  if (chunk.refs.kind === 'spill') {
    let text = ''
    try {
      text = readFileSync(chunk.refs.file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    spilled = bucketPartition(text, chunk.first, chunk.count)
  }
  const out: PrefixDecision[] = []
  for (let j = 0; j < chunk.count; j++) {
    const i = chunk.first + j
    const prefix = INDEX_PREFIXES[i]!
    let lines: Map<string, string>
    let refsText: string | undefined
    let refsSha = EMPTY_SHA256
    if (spilled !== undefined) {
      lines = spilled[j]!
      refsText = lines.size === 0 ? '' : [...lines.values()].join('')
      refsSha = refsText === '' ? EMPTY_SHA256 : sha256hex(refsText)
    } else {
      const record = (chunk.refs as { records: RecordOnDisk[] }).records[j]!
      lines = record.length === 0 ? new Map() : referenceLines(checked(record, `stored references of prefix ${prefix}`).toString('utf8'))
    }
    const refsCount = lines.size
    const groups: MountGroup[] = []
    let lineCount = 0
    for (let k = 0; k < init.sources.length; k++) {
      const record = chunk.lines[j]![k]!
      const [server, mount] = init.sources[k]!
      if (record.count === 0 && record.length === 0) {
        groups.push({ server, mount, entries: [] })
        continue
      }
      const bytes = checked(record, `stored lines of prefix ${prefix}`)
      const parser = new IndexParser({ prefix })
      const entries = parser.push(bytes)
      parser.push(NEWLINE)
      if (!parser.end() || parser.lines !== record.count) {
        throw new Doubt(`prefix ${prefix}: ${parser.error?.message ?? `${parser.lines} lines, the digest says ${record.count}`}`)
      }
      lineCount += entries.length
      groups.push({ server, mount, entries })
    }
    if (lineCount === 0 && refsCount === 0) {
      out.push({ refsText, refsSha, refsCount, outcome: undefined, maxOld: undefined, minYoung: undefined })
      continue
    }
    const builder = new OutcomeBuilder(index, init.policy)
    mergePrefix(groups, refsCount === 0 ? undefined : new PrefixRefs(lines, parse), (block, reference) => builder.visit(block, reference))
    out.push({ refsText, refsSha, refsCount, outcome: builder.text(), maxOld: builder.maxOld, minYoung: builder.minYoung })
  }
  return out
}

const port = parentPort!
port.on('message', (chunk: DecideChunk) => {
  let reply: DecideReply
  try {
    reply = { id: chunk.id, decisions: decideChunk(chunk) }
  } catch (err) {
    reply = err instanceof Doubt ? { id: chunk.id, doubt: err.message } : { id: chunk.id, error: (err as Error).stack ?? String(err) }
  } finally {
    // Closed after every chunk, not left to the pool's terminate(): a thread's descriptors are the process's.
    for (const fd of handles.values()) closeSync(fd)
    handles.clear()
  }
  port.postMessage(reply)
})
