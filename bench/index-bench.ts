import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import type { Agent } from 'undici'
import { KeepError } from '../shared/errors.js'

/**
 * Fills a directory volume root with `count` tiny distinct blocks in the
 * keepstore's on-disk layout (`root/<hash[0:3]>/<hash>`), straight on disk:
 * far faster than PUTting them, and the index scan sees exactly the same tree.
 */
export function populateVolume(root: string, count: number): void {
  const made = new Set<string>()
  for (let i = 0; i < count; i++) {
    const data = Buffer.from(`index-bench block ${i}\n`)
    const hash = createHash('md5').update(data).digest('hex')
    const dir = `${root}/${hash.slice(0, 3)}`
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true })
      made.add(dir)
    }
    writeFileSync(`${dir}/${hash}`, data)
  }
}

export interface Listing {
  seconds: number
  lines: number
  bytes: number
}

/** Times one `GET /index` (admin), reading it to the end; checks the final empty line. */
export async function timeIndex(agent: Agent, origin: string, token: string): Promise<Listing> {
  const start = performance.now()
  const res = await agent.request({ origin, path: '/index', method: 'GET', headers: { authorization: `Bearer ${token}` } })
  if (res.statusCode !== 200) throw new KeepError('KEEP_INTERNAL', `GET /index: HTTP ${res.statusCode}`)
  let bytes = 0
  let lines = 0
  let last2 = ''
  for await (const chunk of res.body) {
    const buf = chunk as Buffer
    bytes += buf.length
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) lines++
    last2 = (last2 + buf.subarray(-2).toString('latin1')).slice(-2)
  }
  const seconds = (performance.now() - start) / 1000
  if (last2 !== '\n\n') throw new KeepError('KEEP_INTERNAL', 'GET /index: no final empty line')
  return { seconds, lines: lines - 1, bytes }
}

/** Times `find ROOT -type f -printf '%f+%s %T@\n'`, its output read by this process as the index is. */
export function timeFind(root: string): Promise<Listing> {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    const child = spawn('find', [root, '-type', 'f', '-printf', '%f+%s %T@\n'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let bytes = 0
    let lines = 0
    child.stdout.on('data', (buf: Buffer) => {
      bytes += buf.length
      for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) lines++
    })
    child.once('error', reject)
    child.once('close', (code) => {
      if (code !== 0) return reject(new KeepError('KEEP_INTERNAL', `find exited with code ${code}`))
      resolve({ seconds: (performance.now() - start) / 1000, lines, bytes })
    })
  })
}

export interface IndexBenchResult {
  blocks: number
  indexSeconds: number[]
  findSeconds: number[]
  /** Best of the runs each. */
  index: Listing
  find: Listing
  /** find's time / the index's time: the index's speed as a fraction of find's. */
  ratio: number
}

/**
 * Alternates `runs` index listings and `runs` finds over the same tree (the
 * first pair also warms the dentry and inode caches, and the keepstore's
 * index cache: the first listing stats every file, later ones only what
 * changed) and keeps the best of each. The first listing's time is reported too.
 */
export async function compareIndexWithFind(agent: Agent, origin: string, token: string, root: string, blocks: number, runs = 5): Promise<IndexBenchResult> {
  const indexRuns: Listing[] = []
  const findRuns: Listing[] = []
  for (let i = 0; i < runs; i++) {
    indexRuns.push(await timeIndex(agent, origin, token))
    findRuns.push(await timeFind(root))
  }
  for (const r of indexRuns) {
    if (r.lines !== blocks) throw new KeepError('KEEP_INTERNAL', `GET /index listed ${r.lines} blocks, expected ${blocks}`)
  }
  const best = (runs: Listing[]): Listing => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a))
  const index = best(indexRuns)
  const find = best(findRuns)
  return {
    blocks,
    indexSeconds: indexRuns.map((r) => r.seconds),
    findSeconds: findRuns.map((r) => r.seconds),
    index,
    find,
    ratio: find.seconds / index.seconds,
  }
}
