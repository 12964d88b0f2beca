import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { Writable } from 'node:stream'
import { parse as parseLossless, isLosslessNumber } from 'lossless-json'
import t, { type Test } from 'tap'
import { showIndex, showList, showMounts, setList, sign, untrash } from '../../client/admin.js'
import { writeBlock } from '../../client/block-writer.js'
import { createContext, type ClientContext } from '../../client/context.js'
import { exitCodeOf } from '../../client/exit-codes.js'
import { getData } from '../../client/get.js'
import { planRead } from '../../client/manifest.js'
import { putFiles } from '../../client/put.js'
import { createProgress } from '../../client/progress.js'
import { clusterStatus, renderStatus, statusExitCode } from '../../client/status.js'
import { parseConfig } from '../../shared/config.js'
import { isKeepError } from '../../shared/errors.js'
import { md5hex } from '../../shared/hash.js'
import { KeepstoreClient } from '../../shared/keepstore-client.js'
import { parseLocator } from '../../shared/locator.js'
import { serviceOrder } from '../../shared/rendezvous.js'
import { createSigner } from '../../shared/signer.js'
import { adminJson, getIndex, putBlock } from '../helpers/block-client.js'
import { ADMIN_TOKEN, SIGNING_KEY, call, clusterDoc, freePorts, startCluster } from '../helpers/cluster.js'
import { runKeep, writeConfigFile } from '../helpers/keep-cli.js'

const HOUR = 3_600_000
const HELLO = Buffer.from('hello\n')
const HELLO_LOC = `${md5hex(HELLO)}+${HELLO.length}`
const HELLO_RE = HELLO_LOC.replace('+', '\\+')

function capture(): Writable & { text: string } {
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.text += chunk.toString()
      cb()
    },
  }) as Writable & { text: string }
  out.text = ''
  return out
}

/** A one-line error on stderr, as a person sees it: no stack trace. */
const ONE_LINE = /^keep: [^\n]+\n$/

t.test('bin/keep: exit codes and one-line errors a person can act on', async (t) => {
  const cluster = await startCluster(t, { keepstores: 2 })
  mkdirSync(path.join(cluster.dir, 'var'))
  const config = writeConfigFile(path.join(cluster.dir, 'var'), cluster.doc, 'cluster.yml')
  t.equal((await putBlock(cluster.urls[0]!, HELLO)).status, 200)

  const usage = await runKeep(['get', 'nothex'])
  t.equal(usage.code, 2, 'bad locator → 2')
  t.match(usage.stderr, /^keep: bad locator "nothex": hash is not 32 lowercase hex digits\n$/)
  const noFiles = await runKeep(['put'])
  t.equal(noFiles.code, 2, 'missing argument → 2')
  t.match(noFiles.stderr, /missing required argument 'files'/)

  const status = await runKeep(['status'], { cwd: cluster.dir })
  t.equal(status.code, 0, `status from ./var/cluster.yml without --config: ${status.stderr}`)
  for (const ks of cluster.config.keepstores) t.match(status.stdout, new RegExp(`^${ks.uuid}  ${ks.url}\\s+up\\s`, 'm'))

  const denied = await runKeep(['--config', config, 'index', cluster.config.keepstores[0]!.uuid], { env: { KEEP_TOKEN: 'not-the-admin-token' } })
  t.equal(denied.code, 5, 'a token the server refuses → 5')
  t.match(denied.stderr, /^keep: http:\/\/127\.0\.0\.1:\d+: permission denied \(403 wrong token\): set KEEP_TOKEN/)
  t.match(denied.stderr, ONE_LINE)

  const closed = writeConfigFile(cluster.dir, clusterDoc(cluster.dir, await freePorts(2)), 'closed.json')
  writeFileSync(path.join(cluster.dir, 'small'), 'small\n')
  const unreachable = await runKeep(['--config', closed, 'put', path.join(cluster.dir, 'small')])
  t.equal(unreachable.code, 3, 'no keepstore answers → 3')
  t.match(unreachable.stderr, /^keep: .*small: block [0-9a-f]{32}\+6: no keepstore reachable: http:\/\/127\.0\.0\.1:\d+: connection refused; http:\/\/127\.0\.0\.1:\d+: connection refused\n$/)
})

t.test('index, pull set, not found and a refused signature (in process): the exit codes main() maps them to', async (t) => {
  const cluster = await startCluster(t, { keepstores: 2 })
  t.equal((await putBlock(cluster.urls[0]!, HELLO)).status, 200)
  const ctx = await createContext({ config: writeConfigFile(cluster.dir, cluster.doc) })
  t.teardown(() => ctx.close())

  const index = capture()
  await showIndex(ctx, cluster.urls[0]!, '', { json: true, out: index })
  const entries = parseLossless(index.text) as Array<{ locator: string; mtime: unknown }>
  const exact = (await getIndex(cluster.urls[0]!)).mtimes.get(HELLO_LOC.slice(0, 32))
  t.equal(entries.length, 1)
  t.equal(entries[0]?.locator, HELLO_LOC)
  t.ok(isLosslessNumber(entries[0]?.mtime) && BigInt(String(entries[0]?.mtime)) === exact, 'index --json: mtime to the nanosecond, as a JSON number')
  const human = capture()
  await showIndex(ctx, cluster.config.keepstores[0]!.uuid, HELLO_LOC.slice(0, 3), { json: false, out: human })
  t.match(human.text, new RegExp(`^${HELLO_RE}  \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\n$`))
  await t.rejects(showIndex(ctx, cluster.urls[0]!, 'XYZ', { json: false, out: capture() }), { code: 'KEEP_BAD_REQUEST' }, 'a bad prefix → 2')

  const list = path.join(cluster.dir, 'pull.json')
  const items = [{ locator: HELLO_LOC, servers: [cluster.urls[0]] }]
  writeFileSync(list, JSON.stringify(items))
  const pulled = capture()
  await setList(ctx, 'pull', cluster.config.keepstores[1]!.uuid, list, { json: false, out: pulled })
  t.match(pulled.text, /^zzzzz-bi6l4-000000000000001: pull list replaced: \d queued\n$/)
  t.match((await adminJson(cluster.urls[1]!, 'GET', '/pull')).json, { digest: createHash('sha256').update(JSON.stringify(items)).digest('hex') })
  writeFileSync(list, '[{"locator": "nothex"}]')
  const refused = await setList(ctx, 'pull', cluster.config.keepstores[1]!.uuid, list, { json: false, out: capture() }).catch((e: unknown) => e)
  t.ok(isKeepError(refused, 'KEEP_BAD_REQUEST') && exitCodeOf(refused) === 2, 'a list the server refuses → 2')
  t.match((refused as Error).message, /^http:\/\/127\.0\.0\.1:\d+: PUT \/pull: 400 /)

  const missing = await putFiles(ctx, { files: [path.join(cluster.dir, 'no such file')], replicas: 1, classes: [], retries: 0, retryDelayMs: 0, parallel: 1, stdinName: 'stdin', progress: false, out: capture() }).catch((e: unknown) => e)
  t.ok(exitCodeOf(missing) === 2, 'a file that cannot be read → 2')
  t.match((missing as Error).message, /^cannot read .*no such file: no such file$/)

  const absent = await getData(ctx, planRead(`${md5hex('absent')}+6`), { file: undefined, out: capture(), parallel: 1, progress: false }).catch((e: unknown) => e)
  t.ok(isKeepError(absent, 'KEEP_BLOCK_NOT_FOUND') && exitCodeOf(absent) === 6, 'a block no keepstore holds → 6')
  t.match((absent as Error).message, /^block [0-9a-f]{32}\+6: not found on any keepstore: .*404/)

  const otherKey = { ...ctx, signer: createSigner({ key: `${SIGNING_KEY}-other`, ttlSeconds: 336 * 3600, maxClockSkewSeconds: 600 }) }
  const out = capture()
  const denied = await getData(otherKey, planRead(HELLO_LOC), { file: undefined, out, parallel: 1, progress: false }).catch((e: unknown) => e)
  t.ok(isKeepError(denied) && exitCodeOf(denied) === 5, 'a signature the servers refuse → 5')
  t.match((denied as Error).message, /permission denied \(check the token and blobSigningKey\): .*400 invalid signature/)
  t.equal(out.text, '')
})

t.test('admin commands (in process): mounts, lists, untrash, sign, status', async (t) => {
  const clock = { now: 1_700_000_000_000 }
  const cluster = await startCluster(t, { keepstores: 2, now: () => clock.now, cluster: { blobSigningTTL: '1h', blobTrashLifetime: '24h' } })
  const ctx = await createContext({ config: writeConfigFile(cluster.dir, cluster.doc) })
  t.teardown(() => ctx.close())
  const [ks0, ks1] = cluster.config.keepstores
  const out = (): Writable & { text: string } => capture()

  const mounts = out()
  await showMounts(ctx, ks0!.uuid, { json: false, out: mounts })
  t.match(mounts.text, new RegExp(`^MOUNT\\s+DEVICE\\s+WRITE\\s+TRASH\\s+REPLICATION\\s+CLASSES\\n${ks0!.volumes[0]!.uuid}\\s+memory:\\S+\\s+yes\\s+yes\\s+1\\s+default\\n$`))

  await putBlock(cluster.urls[0]!, HELLO)
  const cleared = out()
  await setList(ctx, 'trash', ks0!.uuid, undefined, { json: false, out: cleared })
  t.equal(cleared.text, `${ks0!.uuid}: trash list cleared: 0 queued\n`)
  t.match((await adminJson(cluster.urls[0]!, 'GET', '/trash')).json, { items: [] })

  await t.rejects(untrash(ctx, HELLO_LOC, { json: false, out: out() }), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'nothing trashed → not found (exit 6)')
  clock.now += 2 * HOUR
  t.equal((await call(cluster.urls[0]!, 'DELETE', `/${HELLO_LOC}`, { token: ADMIN_TOKEN })).status, 200)
  t.equal((await call(cluster.urls[0]!, 'HEAD', `/${createSigner({ key: SIGNING_KEY, ttlSeconds: 3600, maxClockSkewSeconds: 600, now: () => clock.now }).sign(HELLO_LOC, ADMIN_TOKEN)}`, { token: ADMIN_TOKEN })).status, 404, 'trashed')
  const restored = out()
  await untrash(ctx, HELLO_LOC, { json: false, out: restored })
  t.equal(restored.text, `${HELLO_LOC}: restored on ${ks0!.uuid}\n`)

  const signed = sign(ctx, `${HELLO_LOC}+Kzzzzz`)
  t.match(signed, new RegExp(`^${HELLO_RE}\\+Kzzzzz\\+A[0-9a-f]{40}@[0-9a-f]{8}$`), 'other hints kept')
  t.doesNotThrow(() => createSigner({ key: SIGNING_KEY, ttlSeconds: 3600, maxClockSkewSeconds: 600 }).verify(parseLocator(signed), ADMIN_TOKEN), 'a signature the servers accept')

  await cluster.keepstores[1]!.close()
  const status = await clusterStatus(ctx)
  t.equal(statusExitCode(status), 3, 'a keepstore down → 3')
  t.same([status.membership, status.keepstores[0]!.liveness], [null, null], 'no cluster.etcd: no liveness')
  const text = renderStatus(status)
  t.match(text, new RegExp(`^${ks0!.uuid}\\s+${ks0!.url}\\s+up\\s`, 'm'))
  t.match(text, new RegExp(`^${ks1!.uuid}\\s+${ks1!.url}\\s+unreachable\\s`, 'm'))
  t.match(text, new RegExp(`^${ks1!.uuid}: ${ks1!.url}: unreachable \\(connection refused\\)$`, 'm'))
})

t.test('progress bar: bytes, bytes/s and ETA', async (t) => {
  const stream = capture()
  let now = 0
  const bar = await createProgress(true, 'put', 4 * 1024 * 1024, { stream, now: () => now })
  now = 1000
  bar.add(2 * 1024 * 1024)
  bar.stop()
  t.match(stream.text, /put .* 50% \| 2\.0 MiB of 4\.0 MiB \| 2\.0 MiB\/s \| ETA /)
})

/** Fake keepstores: each answers with `handler`, which sees the request and its body. */
async function fakeKeepstores(t: Test, handlers: Array<(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void>): Promise<ClientContext & { hits: number[] }> {
  const hits = handlers.map(() => 0)
  const urls: string[] = []
  for (const [i, handler] of handlers.entries()) {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        hits[i]!++
        handler(req, Buffer.concat(chunks), res)
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  }
  const doc = clusterDoc(t.testdir({}), urls.map((u) => Number(new URL(u).port)), { cluster: { blobSigning: false } })
  const config = parseConfig(JSON.stringify(doc))
  const client = new KeepstoreClient({ token: ADMIN_TOKEN })
  t.teardown(() => client.close())
  return { config, token: ADMIN_TOKEN, client, signer: undefined, close: () => client.close(), hits }
}

/** Content whose rendezvous order over the fake keepstores is `wanted` (indexes). */
function contentOrdered(ctx: ClientContext, wanted: number[]): Buffer {
  const uuids = ctx.config.keepstores.map((k) => k.uuid)
  for (let i = 0; ; i++) {
    const data = Buffer.from(`content ${i}\n`)
    if (serviceOrder(md5hex(data), ctx.config.keepstores, (k) => k.uuid).map((k) => uuids.indexOf(k.uuid)).join() === wanted.join()) return data
  }
}

/** A 200 with its Content-Length, as a keepstore answers a GET. */
const sized = (res: http.ServerResponse, body: Buffer): void => void res.writeHead(200, { 'content-length': body.length }).end(body)

const stored = (res: http.ServerResponse, text = ''): void => {
  res.writeHead(200, { 'x-keep-replicas-stored': '1' })
  res.end(text)
}

t.test('put: a busy server (503) is skipped now and asked again after the pause; 507 and 4xx are not retried', async (t) => {
  let busy = true
  const ctx = await fakeKeepstores(t, [
    (_req, _body, res) => {
      if (busy) {
        busy = false
        res.writeHead(503).end('busy\n')
      } else stored(res)
    },
    (_req, _body, res) => stored(res),
    (_req, _body, res) => res.writeHead(507).end('full\n'),
  ])
  const data = contentOrdered(ctx, [0, 2, 1])
  const block = { hash: md5hex(data), size: data.length, data }
  const policy = { replicas: 2, classes: [], retries: 2, retryDelayMs: 5 }
  const result = await writeBlock(ctx.client, ctx.config.keepstores, block, policy)
  t.equal(result.replicas, 2)
  t.same(ctx.hits, [2, 1, 1], 'busy server asked twice; the full one once, then the next one')
  t.same(result.servers, [ctx.config.keepstores[1]!.uuid, ctx.config.keepstores[0]!.uuid])

  const err = await writeBlock(ctx.client, ctx.config.keepstores, block, { ...policy, replicas: 3 }).catch((e: unknown) => e)
  t.ok(isKeepError(err, 'KEEP_INSUFFICIENT_REPLICAS'), 'two servers answer, one is full → not enough replicas (exit 4)')
  t.match((err as Error).message, /not enough replicas stored: 2 of 3 wanted: http:\/\/127\.0\.0\.1:\d+: 507 full$/)
  t.same(ctx.hits, [3, 2, 2], 'no retry round for 507')
})

t.test('pull and trash lists as the server holds them: human tables, exact mtimes, JSON verbatim', async (t) => {
  const mtime = '1700000000123456789' // beyond 2^53: a JSON.parse would round it
  const trash = `{"received_at":"2026-12-01T00:00:00.000Z","digest":"${'d'.repeat(64)}","queued":1,"in_progress":0,"done":2,"failed":0,"skipped":3,"items":[{"locator":"${HELLO_LOC}","block_mtime":${mtime},"mount_uuid":"zzzzz-nyw5e-000000000000000"}]}`
  const pull = `{"received_at":null,"digest":null,"queued":1,"in_progress":0,"done":0,"failed":0,"skipped":0,"items":[{"locator":"${HELLO_LOC}","servers":["http://a:1","http://b:2"]}]}`
  const ctx = await fakeKeepstores(t, [(req, _body, res) => res.writeHead(200).end(req.url === '/trash' ? trash : pull)])
  const server = ctx.config.keepstores[0]!.uuid
  const human = capture()
  await showList(ctx, 'trash', server, { json: false, out: human })
  t.equal(
    human.text,
    `trash list of ${server}: received 2026-12-01T00:00:00.000Z, digest ${'d'.repeat(64)}\nqueued 1, in progress 0, done 2, failed 0, skipped 3\n\n` +
      `LOCATOR                             BLOCK_MTIME          MOUNT\n${HELLO_LOC}  ${mtime}  zzzzz-nyw5e-000000000000000\n`,
  )
  const json = capture()
  await showList(ctx, 'trash', server, { json: true, out: json })
  t.equal(json.text, `${trash}\n`, 'JSON: the server text itself')
  const pulls = capture()
  await showList(ctx, 'pull', server, { json: false, out: pulls })
  t.match(pulls.text, /received never, digest -\n/)
  t.match(pulls.text, new RegExp(`\\n${HELLO_RE}  http://a:1,http://b:2  \\(any\\)\\n$`))
})

t.test('get: bytes that fail their hash are never emitted; the next server copy is', async (t) => {
  let good: Buffer = Buffer.alloc(0)
  const ctx = await fakeKeepstores(t, [
    (_req, _body, res) => res.writeHead(200).end(Buffer.from(good.toString().toUpperCase())), // same length, wrong bytes
    (_req, _body, res) => res.writeHead(200).end(good),
  ])
  good = contentOrdered(ctx, [0, 1])
  const plan = planRead(`${md5hex(good)}+${good.length}`)
  const out = capture()
  await getData(ctx, plan, { file: undefined, out, parallel: 2, progress: false })
  t.equal(out.text, good.toString(), 'stdout: only the verified copy')
  t.same(ctx.hits, [1, 1], 'the corrupt copy first, then the next server')

  // To a file, blocks are written as they arrive: a bad copy past the first write batch (2 MiB) is overwritten by the good one.
  // Blocks of 1 MiB and more are read straight from the socket (client/raw-get.ts); keepstores send Content-Length.
  let big = Buffer.alloc(0)
  let bigBad = Buffer.alloc(0)
  const bigCtx = await fakeKeepstores(t, [(_req, _body, res) => sized(res, bigBad), (_req, _body, res) => sized(res, big)])
  for (let i = 0; serviceOrder(md5hex(big), bigCtx.config.keepstores, (k) => k.uuid)[0]!.uuid !== bigCtx.config.keepstores[0]!.uuid; i++) {
    big = Buffer.alloc(5 * 1024 * 1024, `keep ${i} `)
  }
  bigBad = Buffer.from(big)
  bigBad[0] = bigBad[0]! ^ 1 // wrong from the first byte: that batch is written before the hash is known
  const bigTarget = path.join(t.testdir({}), 'big')
  await getData(bigCtx, planRead(`${md5hex(big)}+${big.length}`), { file: bigTarget, out: capture(), parallel: 1, progress: false })
  t.same(bigCtx.hits, [1, 1], 'the bad copy, then the good one')
  t.ok(readFileSync(bigTarget).equals(big), 'the file holds the good copy, also where the bad one had been written')

  // Large blocks, read from the socket: a copy cut short, a 404 with its reason, another Content-Length, then a
  // chunked 200 (no keepstore sends one) read through the full HTTP client.
  const ctx4 = await fakeKeepstores(t, [
    (_req, _body, res) => {
      res.writeHead(200, { 'content-length': big.length }).write(big.subarray(0, 3 * 1024 * 1024 + 5))
      setImmediate(() => res.destroy())
    },
    (_req, _body, res) => res.writeHead(404).end('block not found\nsecond line'),
    (_req, _body, res) => sized(res, big.subarray(1)),
    (_req, _body, res) => res.writeHead(200).end(big),
  ])
  const uuids4 = ctx4.config.keepstores.map((k) => k.uuid)
  for (let i = 0; serviceOrder(md5hex(big), ctx4.config.keepstores, (k) => k.uuid).map((k) => uuids4.indexOf(k.uuid)).join() !== '0,1,2,3'; i++) {
    big = Buffer.alloc(5 * 1024 * 1024, `keep ${i} `)
  }
  const plan4 = planRead(`${md5hex(big)}+${big.length}`)
  await getData(ctx4, plan4, { file: bigTarget, out: capture(), parallel: 1, progress: false })
  t.ok(readFileSync(bigTarget).equals(big), 'to a file: the fourth server\'s copy, whole')
  const big4 = capture()
  await getData(ctx4, plan4, { file: undefined, out: big4, parallel: 1, progress: false })
  t.equal(big4.text, big.toString(), 'to stdout: the same')
  t.same(ctx4.hits, [2, 2, 2, 4], 'each server once per get; the chunked one twice (raw, then the full client)')
  ctx4.config.keepstores.splice(3, 1) // without the chunked one: every reason is in the error
  const error = await getData(ctx4, plan4, { file: undefined, out: capture(), parallel: 1, progress: false }).then(
    () => new Error('resolved'),
    (err: unknown) => err as Error,
  )
  t.match(error, { code: 'KEEP_CORRUPT' })
  const asked = [...ctx4.hits]
  await t.rejects(getData({ ...ctx4, token: 'token\r\nX-Injected: 1' }, plan4, { file: undefined, out: capture(), parallel: 1, progress: false }), { code: 'KEEP_BAD_REQUEST' }, 'a line break in the token: refused here')
  t.same(ctx4.hits, asked, 'no server asked')
  t.match(error.message, /: cut short after \d+ of 5242880 bytes \(connection (closed|reset)\); .*: 404 block not found; .*: answered with Content-Length 5242879, not the 5242880 bytes of the size hint$/)

  const onlyBad = await fakeKeepstores(t, [(_req, _body, res) => res.writeHead(200).end(Buffer.alloc(good.length, 0x41))])
  const dir = t.testdir({})
  const target = path.join(dir, 'out')
  const stdout = capture()
  await t.rejects(getData(onlyBad, plan, { file: undefined, out: stdout, parallel: 1, progress: false }), { code: 'KEEP_CORRUPT' })
  t.equal(stdout.text, '', 'nothing emitted')
  await t.rejects(getData(onlyBad, plan, { file: target, out: capture(), parallel: 1, progress: false }), { code: 'KEEP_CORRUPT' })
  t.notOk(existsSync(target), 'no output file')
  t.same(readdirSync(dir), [], 'no temporary file left')
})
