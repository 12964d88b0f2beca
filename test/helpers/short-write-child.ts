// Child process of the short-write test, started under `ulimit -f` with SIGXFSZ
// ignored: the file system then writes a block only up to the size limit (a
// short write) and fails the rest with EFBIG. Writes one block of SIZE bytes in
// 1000-byte chunks and prints what happened as one JSON line.
// Usage: node short-write-child.js ROOT SIZE
import { existsSync, readdirSync } from 'node:fs'
import { createDirectoryVolume } from '../../keepstore/volumes/directory-volume.js'
import { bytes, chunked, collect, md5 } from './volume-suite.js'

const [root, size] = process.argv.slice(2) as [string, string]
const volume = createDirectoryVolume({ uuid: 'zzzzz-nyw5e-000000000000000', root })
await volume.open()
const data = bytes(Number(size), 5)
const hash = md5(data)
let outcome: string
try {
  await volume.write(hash, chunked(data, 1000))
  outcome = 'acknowledged'
} catch (err) {
  outcome = (err as { code?: string }).code ?? String(err)
}
const dir = `${root}/${hash.slice(0, 3)}`
process.stdout.write(`${JSON.stringify({
  outcome,
  stored: existsSync(`${dir}/${hash}`),
  indexed: (await collect(volume.index(''))).length,
  hidden: existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('.')) : [],
})}\n`)
