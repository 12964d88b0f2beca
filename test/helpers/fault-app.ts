import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import type { Test } from 'tap'
import { Slots } from '../../keepstore/slots.js'
import { createApp } from '../../keepstore/http/app.js'
import { Keepstore } from '../../keepstore/keepstore.js'
import { KeepstoreMetrics } from '../../keepstore/metrics.js'
import { Mount } from '../../keepstore/mount.js'
import { type FaultHook, createDirectoryVolume } from '../../keepstore/volumes/directory-volume.js'
import { captureLogger, clusterConfig } from './cluster.js'

export const FAULT_VOLUME_UUID = 'zzzzz-nyw5e-000000000000000'

/** Stands for a failing file-system step, as the fault hook throws it. */
export const fault = (code: string): Error => Object.assign(new Error(`simulated ${code}`), { code })

export interface FaultApp {
  url: string
  root: string
  logs: object[]
  keepstore: Keepstore
  server: http.Server
}

/**
 * The keepstore's HTTP app over one directory volume whose file-system steps
 * `faults` may fail or stall (startKeepstore builds volumes from the config,
 * which has no place for a hook). Closed at teardown.
 */
export async function serveWithFaults(t: Test, faults: FaultHook): Promise<FaultApp> {
  const dir = t.testdir({ disk: {} })
  const root = path.join(dir, 'disk')
  const logs: object[] = []
  const logger = captureLogger(logs)
  const volume = createDirectoryVolume({ uuid: FAULT_VOLUME_UUID, root, faults })
  await volume.open()
  const mount = new Mount({ volume, replication: 1, storageClasses: ['default'], priority: 0, readOnly: false, minFreeSpace: 0 })
  const { cluster } = clusterConfig(dir, [1])
  const keepstore = new Keepstore({ uuid: 'zzzzz-bi6l4-000000000000000', mounts: [mount], cluster, logger })
  const metrics = new KeepstoreMetrics({ mounts: () => keepstore.mounts })
  const app = createApp({ keepstore, worklists: undefined, metrics, logger, version: 'test' }, { requests: new Slots(8), writes: new Slots(8) })
  const server = http.createServer(app.callback())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, root, logs, keepstore, server }
}
