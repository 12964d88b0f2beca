import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { figure } from '../helpers/soak.js'

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'record-memory-child.js')

/** One `.jsonl` record whose manifest is `bytes` long: distinct locators, one file segment. */
async function writeBigRecord(file: string, bytes: number): Promise<void> {
  const out = createWriteStream(file)
  const write = (s: string): Promise<void> => new Promise((resolve) => (out.write(s) ? resolve() : out.once('drain', () => resolve())))
  await write('{"uuid":"zzzzz-4zz18-bigbigbigbigbig","replication_desired":2,"manifest_text":". ')
  let written = 0
  let n = 0
  while (written < bytes) {
    let piece = ''
    for (let i = 0; i < 10_000; i++) piece += `${(n++).toString(16).padStart(32, '0')}+1048576 `
    written += piece.length
    await write(piece)
  }
  await write('0:1:file.txt\\n"}\n')
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())))
}

t.test('a 50 MB manifest record is scanned with peak memory under 4× its size above the baseline', async (t) => {
  const dir = t.testdir({})
  const file = path.join(dir, 'big.jsonl')
  await writeBigRecord(file, 50_000_000)
  const size = (await stat(file)).size
  const child = spawn(process.execPath, [CHILD, file], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  t.equal(code, 0, 'the child finished')
  const m = JSON.parse(out) as { baselineKiB: number; peakKiB: number; collections: number; references: number; walked: number; malformed: number }
  t.equal(m.collections, 1, 'the record was read')
  t.equal(m.malformed, 0)
  t.ok(m.references > 1_000_000, `${m.references} references counted`)
  t.equal(m.walked, m.references, 'every reference was walked')
  const growth = (m.peakKiB - m.baselineKiB) * 1024
  const ratio = growth / size
  figure(t, 'record-memory', { recordMB: (size / 1e6).toFixed(1), baselineMB: (m.baselineKiB / 1024).toFixed(0), peakMB: (m.peakKiB / 1024).toFixed(0), ratio: ratio.toFixed(2) })
  t.ok(ratio < 4, `peak RSS grew by ${(growth / 1e6).toFixed(0)} MB for a ${(size / 1e6).toFixed(0)} MB record (${ratio.toFixed(2)}×, bound 4×)`)
})
