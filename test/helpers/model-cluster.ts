import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Test } from 'tap'
import type { Config } from '../../shared/config.js'
import { KeepstoreClient } from '../../shared/keepstore-client.js'
import { silentLogger } from '../../shared/logger.js'
import { createFileLock } from '../../datamanager/lock.js'
import { runDatamanager, type RunOptions, type RunResult } from '../../datamanager/run.js'
import { ADMIN_TOKEN, clusterConfig, T0 } from './cluster-config.js'
import { modelMount, startModelKeepstore, type ModelKeepstore } from './model-keepstore.js'

/** A collection record of a model cluster. */
export interface ModelCollection {
  uuid: string
  hashes: string[]
  replication?: number | null
  classes?: string[]
}

export interface ModelCluster {
  dir: string
  stateDir: string
  config: Config
  keepstores: ModelKeepstore[]
  /** The datamanager's clock (ms). */
  clock: { now: number }
  /** A datamanager run (silent logs, instant retries, dry-run output swallowed). */
  run(options?: Partial<RunOptions>): Promise<RunResult>
  writeCollections(collections: readonly ModelCollection[]): Promise<void>
  /** The lists a dry run wrote for server `i` (the exact bodies a commit would PUT). */
  dryRunLists(i: number): Promise<{ pull: string; trash: string }>
}

/** The size a model block of `hash` has (any block of the same hash, anywhere). */
export function modelSize(hash: string): number {
  return (parseInt(hash.slice(-4), 16) % 1000) + 1
}

/**
 * Model keepstores (`mountsPerServer[i]` mounts on server i, none holding
 * anything yet), a collections file and a datamanager config pointing at
 * them (TTL 1 h, state in `<dir>/dm`).
 */
export async function startModelCluster(t: Test, mountsPerServer: number[], datamanager: Record<string, unknown> = {}): Promise<ModelCluster> {
  const dir = t.testdir({})
  const keepstores: ModelKeepstore[] = []
  for (const [i, count] of mountsPerServer.entries()) {
    const mounts = Array.from({ length: count }, (_, j) => modelMount(`zzzzz-nyw5e-${String(i).padStart(7, '0')}${String(j).padStart(8, '0')}`))
    keepstores.push(await startModelKeepstore(t, `zzzzz-bi6l4-${String(i).padStart(15, '0')}`, mounts))
  }
  const config = clusterConfig(
    dir,
    keepstores.map((k) => Number(new URL(k.url).port)),
    { cluster: { blobSigningTTL: '1h' }, datamanager: { collections: 'collections.jsonl', stateDir: 'dm', ...datamanager } },
  )
  const stateDir = path.join(dir, 'dm')
  const collectionsFile = path.join(dir, 'collections.jsonl')
  await writeFile(collectionsFile, '')
  const client = new KeepstoreClient({ token: ADMIN_TOKEN })
  t.teardown(() => client.close())
  const lock = createFileLock(stateDir)
  const clock = { now: T0 }
  return {
    dir,
    stateDir,
    config,
    keepstores,
    clock,
    run: (options = {}) =>
      runDatamanager({
        config,
        client,
        lock,
        logger: silentLogger(),
        now: () => clock.now,
        commit: { attempts: 1, sleep: async () => {} },
        out: { write: () => true } as unknown as NodeJS.WritableStream,
        ...options,
      }),
    async writeCollections(collections) {
      const lines = collections.map((c) => {
        const locators = c.hashes.map((h) => `${h}+${modelSize(h)}`)
        const manifest = locators.length === 0 ? '' : `. ${locators.join(' ')} 0:1:f\n`
        return `${JSON.stringify({ uuid: c.uuid, manifest_text: manifest, replication_desired: c.replication ?? null, storage_classes_desired: c.classes ?? null })}\n`
      })
      await writeFile(collectionsFile, lines.join(''))
    },
    async dryRunLists(i) {
      const base = path.join(stateDir, 'dry-run', keepstores[i]!.uuid)
      const read = async (kind: string): Promise<string> => (await readFile(`${base}.${kind}.json`, 'utf8')).trimEnd()
      return { pull: await read('pull'), trash: await read('trash') }
    },
  }
}

/** The last `PUT path` body a model keepstore received since `since` (an index into its lists), or undefined. */
export function lastList(k: ModelKeepstore, p: '/pull' | '/trash', since = 0): string | undefined {
  return k.lists.slice(since).filter((l) => l.path === p).at(-1)?.body
}
