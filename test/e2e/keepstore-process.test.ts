import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFile, mkdir } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import net from 'node:net'
import { createInterface } from 'node:readline'
import { createHash } from 'node:crypto'
import { freePorts, ADMIN_TOKEN, MANAGEMENT_TOKEN, SIGNING_KEY, call } from '../helpers/cluster.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const bin = path.join(repo, 'bin/keepstore')
const md5 = (b: string): string => createHash('md5').update(b).digest('hex')

interface Running {
  child: ChildProcess
  exit: Promise<{ code: number | null; stderr: string }>
  /** Resolves with the first JSON log line (stdout) whose msg is `msg`; rejects if the process exits first. */
  logged(msg: string): Promise<object>
}

function run(args: string[]): Running {
  // Without tap's NODE_OPTIONS: its loaders are for test files, not for the program under test.
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d.toString()))
  const lines: Array<{ msg?: string }> = []
  const waiters: Array<{ msg: string; resolve: (l: object) => void }> = []
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let entry: { msg?: string }
    try {
      entry = JSON.parse(line) as { msg?: string }
    } catch {
      return
    }
    lines.push(entry)
    for (const w of waiters.filter((w) => w.msg === entry.msg)) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(entry)
    }
  })
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr })))
  const logged = (msg: string): Promise<object> => {
    const seen = lines.find((l) => l.msg === msg)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      waiters.push({ msg, resolve })
      void exit.then(({ code }) => reject(new Error(`keepstore exited (${code}) before logging "${msg}": ${stderr}`)))
    })
  }
  return { child, exit, logged }
}

async function configFile(dir: string, port: number, extra = ''): Promise<string> {
  const file = path.join(dir, 'cluster.yml')
  await mkdir(path.join(dir, 'disk0'), { recursive: true })
  await writeFile(
    file,
    `cluster:
  id: zzzzz
  systemRootToken: ${ADMIN_TOKEN}
  managementToken: ${MANAGEMENT_TOKEN}
  blobSigningKey: ${SIGNING_KEY}
keepstores:
  - uuid: zzzzz-bi6l4-000000000000000
    url: http://127.0.0.1:${port}
    volumes:
      - uuid: zzzzz-nyw5e-000000000000000
        root: disk0
${extra}`,
  )
  return file
}

/** Started = it logged that it listens; then one health check through real HTTP. */
async function healthy(url: string, running: Running): Promise<void> {
  await running.logged('keepstore listening')
  const res = await call(url, 'GET', '/_health/ping', { token: MANAGEMENT_TOKEN })
  if (res.status !== 200) throw new Error(`health: ${res.status}`)
}

/** Reads from a raw socket until `pattern` matches what arrived so far. */
function readUntil(sock: net.Socket, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = ''
    const onData = (d: Buffer): void => {
      data += d.toString()
      if (pattern.test(data)) {
        sock.off('data', onData)
        sock.off('close', onClose)
        resolve(data)
      }
    }
    const onClose = (): void => reject(new Error(`socket closed; got ${JSON.stringify(data)}`))
    sock.on('data', onData)
    sock.on('close', onClose)
  })
}

t.test('bin/keepstore: a bad config is one line naming the key, exit 2', async (t) => {
  const dir = t.testdir({ 'bad.yml': 'cluster:\n  id: zzzzz\n  systemRootToken: short\nkeepstores: []\n' })
  const { exit } = run(['--config', path.join(dir, 'bad.yml')])
  const { code, stderr } = await exit
  t.equal(code, 2)
  t.match(stderr, /^config: cluster\.systemRootToken: [^\n]+\n$/)
  const missing = await run(['--config', path.join(dir, 'nope.yml')]).exit
  t.equal(missing.code, 2)
  t.match(missing.stderr, /^config: [^\n]*nope\.yml[^\n]*\n$/)
})

t.test('bin/keepstore: a missing volume root is a clear start-up error, exit 2', async (t) => {
  const dir = t.testdir({})
  const [port] = await freePorts(1)
  const file = await configFile(dir, port!)
  const { rm } = await import('node:fs/promises')
  await rm(path.join(dir, 'disk0'), { recursive: true })
  const { code, stderr } = await run(['--config', file]).exit
  t.equal(code, 2)
  t.match(stderr, /disk0/)
  t.equal(stderr.trim().split('\n').length, 1, 'one line')
})

t.test('bin/keepstore: SIGTERM finishes the request in flight, then exits 0', async (t) => {
  const dir = t.testdir({})
  const [port] = await freePorts(1)
  const file = await configFile(dir, port!)
  const first = run(['--config', file])
  const url = `http://127.0.0.1:${port}`
  await healthy(url, first)
  const data = 'in flight during shutdown'
  // A raw PUT with Expect: 100-continue: "100 Continue" says the server has taken the request.
  const sock = net.connect(port!, '127.0.0.1')
  t.teardown(() => sock.destroy())
  sock.write(`PUT /${md5(data)} HTTP/1.1\r\nHost: x\r\nContent-Length: ${data.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`)
  await readUntil(sock, /^HTTP\/1\.1 100 Continue\r\n\r\n/)
  sock.write(data.slice(0, 5))
  const answer = readUntil(sock, /\r\n\r\n[^\n]*\n/)
  first.child.kill('SIGTERM')
  await first.logged('shutting down')
  sock.write(data.slice(5))
  const text = await answer
  t.match(text, /^HTTP\/1\.1 200 /, 'the in-flight PUT completed')
  t.equal(text.split('\r\n\r\n')[1]!.split('+')[0], md5(data))
  const { code } = await first.exit
  t.equal(code, 0, 'clean exit')
  const again = run(['--config', file])
  await healthy(url, again)
  const index = await call(url, 'GET', '/index', { token: ADMIN_TOKEN })
  t.match(index.text, md5(data), 'the acknowledged block is there after restart')
  again.child.kill('SIGTERM')
  t.equal((await again.exit).code, 0)
})
