import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { startCluster } from '../helpers/cluster.js'
import { runKeep, sameBytes, writeConfigFile, writeSparseFile } from '../helpers/keep-cli.js'

const MiB = 1024 * 1024
/** A one-line error on stderr, as a person sees it: no stack trace. */
const ONE_LINE = /^keep: [^\n]+\n$/

// `keep get` where the output cannot take the bytes: the disk is full, or the
// file is past the process's size limit. The command says so in one line, exits
// 1, and leaves nothing half-written under the target's name.
t.test('keep get: output write errors are one line, exit 1, nothing left behind', async (t) => {
  const cluster = await startCluster(t, { keepstores: 2 })
  const config = writeConfigFile(cluster.dir, cluster.doc)
  const source = path.join(cluster.dir, 'three-mib')
  writeSparseFile(source, 3 * MiB, 7)
  const put = await runKeep(['--config', config, 'put', '--replicas', '1', source])
  t.equal(put.code, 0, `put: ${put.stderr}`)
  const line = put.stdout.trim()

  const outDir = path.join(cluster.dir, 'out')
  mkdirSync(outDir)
  const target = path.join(outDir, 'target')
  writeFileSync(target, 'the previous content\n')

  const tooBig = await runKeep(['--config', config, 'get', line, '-o', target], { fileSizeLimitKiB: 1024 })
  t.equal(tooBig.signal, null, 'not killed by SIGXFSZ')
  t.equal(tooBig.code, 1, `past the file-size limit → 1: ${tooBig.stderr}`)
  t.match(tooBig.stderr, ONE_LINE)
  t.match(tooBig.stderr, /^keep: cannot write .*target: EFBIG/)
  t.equal(readFileSync(target, 'utf8'), 'the previous content\n', 'the target is untouched')
  t.same(readdirSync(outDir), ['target'], 'no temporary file is left')

  const fits = await runKeep(['--config', config, 'get', line, '-o', target], { fileSizeLimitKiB: 8192 })
  t.equal(fits.code, 0, `under a limit it fits: ${fits.stderr}`)
  t.ok(sameBytes(source, target), 'the file arrived whole')
  t.same(readdirSync(outDir), ['target'])

  t.ok(existsSync('/dev/full'), 'this test needs /dev/full (Linux)')
  const full = await runKeep(['--config', config, 'get', line], { stdoutFile: '/dev/full' })
  t.equal(full.code, 1, `stdout on a full device → 1: ${full.stderr}`)
  t.match(full.stderr, ONE_LINE)
  t.match(full.stderr, /^keep: cannot write to stdout: ENOSPC/)
})
