import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { scanCollections, type CollectionsSummary, type ParsedCollection } from '../../datamanager/collections.js'
import { scanCollectionsInWorker } from '../../datamanager/collections-thread.js'
import { createReferenceSpill, type ReferencedBlock } from '../../datamanager/references.js'
import { md5hex } from '../../shared/hash.js'

const hash = (n: number): string => md5hex(`block ${n}`)

/** Collection lines: valid records over 300 blocks (shared between collections), one malformed line, one bad manifest. */
function records(): string {
  const lines: string[] = []
  for (let c = 0; c < 40; c++) {
    const locators = Array.from({ length: 12 }, (_, k) => `${hash((c * 7 + k * 13) % 300)}+${(c + k) % 50}`)
    const record: Record<string, unknown> = { uuid: `zzzzz-4zz18-${String(c).padStart(15, '0')}`, manifest_text: `. ${locators.join(' ')} 0:0:f\n` }
    if (c % 3 === 0) record.replication_desired = 3
    if (c % 5 === 0) record.storage_classes_desired = ['archive', 'default']
    lines.push(JSON.stringify(record))
    if (c === 17) lines.push('{not json')
    if (c === 23) lines.push(JSON.stringify({ uuid: 'zzzzz-4zz18-bad', manifest_text: '. nothash+1 0:1:f\n' }))
  }
  return `${lines.join('\n')}\n`
}

async function spilled(dir: string): Promise<ReferencedBlock[]> {
  const out: ReferencedBlock[] = []
  for await (const batch of createReferenceSpill(dir).blocks()) out.push(...batch)
  return out
}

const seen = (list: Array<[string, number, number, readonly string[]]>) => ({
  addCollection(c: ParsedCollection) {
    list.push([c.uuid, c.replication, c.refs.count, c.classes])
  },
})

t.test('collections scanned in a worker thread: the same summary, spilled references and records as a scan on the main thread', async (t) => {
  const dir = t.testdir({ inline: {}, worker: {} })
  const source = path.join(dir, 'collections.jsonl')
  await writeFile(source, records())
  const options = { defaultReplication: 2, maxRecordBytes: 1 << 20 }

  const inlineRecords: Array<[string, number, number, readonly string[]]> = []
  const spill = createReferenceSpill(path.join(dir, 'inline'), { bufferChars: 256 })
  const inlineSink = {
    addCollection(c: ParsedCollection) {
      seen(inlineRecords).addCollection(c)
      return spill.addCollection(c)
    },
  }
  const inline = await scanCollections(source, inlineSink, options)
  await spill.finish()

  const workerRecords: Array<[string, number, number, readonly string[]]> = []
  const progress: number[] = []
  const worker = await scanCollectionsInWorker(
    { source, dir: path.join(dir, 'worker'), bufferChars: 256, records: true, ...options },
    { records: seen(workerRecords), onProgress: (done) => progress.push(done) },
  )
  t.same(worker, inline)
  t.equal(worker.collections, 40, 'the record with a bad manifest is not a collection')
  t.equal(worker.malformed, 2)
  t.same(workerRecords, inlineRecords, 'every record handed on, in order')
  t.equal(workerRecords.length, 40)
  const references = await spilled(path.join(dir, 'worker'))
  t.ok(references.length > 200)
  t.same(references, await spilled(path.join(dir, 'inline')))
  t.ok(progress.length > 0 && progress.at(-1)! > 0, 'progress reported')
})

t.test('collections in a worker thread: an unreadable source is a summary that says so, a stopped scan says it stopped, a failing sink fails the scan', async (t) => {
  const dir = t.testdir({ spill: {}, spill2: {}, spill3: {} })
  const job = { defaultReplication: 2, maxRecordBytes: 1 << 20, bufferChars: undefined, records: false }
  const missing: CollectionsSummary = await scanCollectionsInWorker({ ...job, source: path.join(dir, 'absent.jsonl'), dir: path.join(dir, 'spill') })
  t.match(missing.unreadable, /absent\.jsonl: ENOENT/)

  const source = path.join(dir, 'collections.jsonl')
  await writeFile(source, records())
  const stopped = await scanCollectionsInWorker({ ...job, source, dir: path.join(dir, 'spill2') }, { signal: AbortSignal.abort() })
  t.equal(stopped.unreadable, 'stopped at the run deadline')

  const failing = {
    addCollection() {
      return Promise.reject(new Error('disk full'))
    },
  }
  await t.rejects(scanCollectionsInWorker({ ...job, records: true, source, dir: path.join(dir, 'spill3') }, { records: failing }), /disk full/)
})
