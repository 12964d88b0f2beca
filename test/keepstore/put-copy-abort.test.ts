import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { Keepstore } from '../../keepstore/keepstore.js'
import { Mount } from '../../keepstore/mount.js'
import { type FaultHook, createDirectoryVolume } from '../../keepstore/volumes/directory-volume.js'
import { clusterConfig } from '../helpers/cluster.js'
import { silentLogger } from '../../shared/logger.js'

t.test('put: a client leaving while the block is copied to a further storage class crashes nothing', async (t) => {
  const dir = t.testdir({})
  let temps = 0
  let armed = false
  let reached: (() => void) | undefined
  let release: (() => void) | undefined
  const atSecondTemp = new Promise<void>((resolve) => (reached = resolve))
  // The second temp file (the copy to the other class) waits until the test lets it go.
  const faults: FaultHook = async (op, path) => {
    if (!armed || op !== 'open' || !path.includes('.tmp-') || ++temps !== 2) return
    reached!()
    await new Promise<void>((resolve) => (release = resolve))
  }
  const mounts = ['a', 'b'].map((cls, i) => {
    const root = `${dir}/vol${i}`
    mkdirSync(root)
    const volume = createDirectoryVolume({ uuid: `zzzzz-nyw5e-00000000000000${i}`, root, faults })
    return { volume, mount: new Mount({ volume, replication: 1, storageClasses: [cls], priority: 0, readOnly: false, minFreeSpace: 0 }) }
  })
  for (const m of mounts) await m.volume.open()
  armed = true
  const keepstore = new Keepstore({ uuid: 'zzzzz-bi6l4-000000000000000', mounts: mounts.map((m) => m.mount), cluster: clusterConfig(dir, [1]).cluster, logger: silentLogger() })
  const data = Buffer.alloc(3 * 1024 * 1024, 5)
  const hash = createHash('md5').update(data).digest('hex')
  const client = new AbortController()
  async function* body(): AsyncGenerator<Buffer> {
    yield data
  }
  const put = keepstore.put(hash, body(), { classes: ['a', 'b'], signal: client.signal })
  await atSecondTemp
  client.abort() // the PUT's client hangs up while the copy has not read a byte yet
  await new Promise((r) => setImmediate(r))
  release!()
  const result = await put
  t.equal(result.replicas, 1, 'the first replica stands; the copy was given up')
  t.same(Object.keys(result.classesConfirmed).length, 1)
})
