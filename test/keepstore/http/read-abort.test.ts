import t from 'tap'
import net from 'node:net'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { SIGNING_KEY, call } from '../../helpers/cluster.js'
import { serveWithFaults } from '../../helpers/fault-app.js'
import { createSigner } from '../../../shared/signer.js'

const TOKEN = 'user-token-abcdefghijklmnopqrstuvwxyz'
const signer = createSigner({ key: SIGNING_KEY, ttlSeconds: 336 * 3600, maxClockSkewSeconds: 600 })

/** Resolves once `check` holds, looking again each time the event loop turns (5 s at most). */
async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000
  while (!check()) {
    if (Date.now() > deadline) throw new Error('not within 5 s')
    await new Promise((r) => setTimeout(r, 10))
  }
}

for (const method of ['HEAD', 'GET'] as const) {
  t.test(`${method}: a client that leaves mid-read stops the read; the volume is not blamed`, async (t) => {
    let stalled: (() => void) | undefined
    let reads = 0
    let stalling = false
    const app = await serveWithFaults(t, async (op) => {
      if (!stalling || op !== 'read') return
      reads++
      if (reads === 1) await new Promise<void>((resolve) => (stalled = resolve))
    })
    // 4 MiB: several 1 MiB reads, the first of which the hook holds back.
    const data = Buffer.alloc(4 * 1024 * 1024, 7)
    const hash = createHash('md5').update(data).digest('hex')
    t.equal((await call(app.url, 'PUT', `/${hash}`, { body: data })).status, 200)
    stalling = true
    const serverSide = once(app.server, 'connection') as Promise<[net.Socket]>
    const client = net.connect(Number(new URL(app.url).port), '127.0.0.1')
    client.on('error', () => undefined)
    const locator = signer.sign(`${hash}+${data.length}`, TOKEN)
    client.write(`${method} /${locator} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`)
    const [socket] = await serverSide
    await until(() => stalled !== undefined)
    const closed = once(socket, 'close')
    client.destroy()
    await closed
    stalled!()
    await until(() => app.logs.some((l) => (l as { msg?: string; method?: string }).msg === 'request' && (l as { method?: string }).method === method))
    t.equal(reads, 1, 'no read after the client left')
    t.equal(app.keepstore.mounts[0]!.errors, 0, 'the volume is not blamed')
  })
}
