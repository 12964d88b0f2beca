import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { serializePullList, serializeTrashList } from '../shared/worklist-items.js'
import { writeFileAtomic } from './atomic-file.js'
import type { ChangeSet } from './change-sets.js'
import type { Refusal } from './sanity.js'

/**
 * `--dry-run`: writes each server's would-be lists to
 * `<dir>/<server uuid>.pull.json` and `.trash.json` (exactly the bodies
 * commit would PUT; a refused run would send only `[]` as trash lists) and
 * prints one line per server to `out`.
 */
export async function writeDryRun(dir: string, sets: readonly ChangeSet[], refusals: readonly Refusal[], out: NodeJS.WritableStream): Promise<void> {
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const refused = refusals.length > 0
  if (refused) out.write(`dry run: would refuse (${refusals.map((r) => r.code).join(', ')}): only empty trash lists would be sent\n`)
  for (const set of sets) {
    const base = path.join(dir, set.server.uuid)
    const pulls = refused ? [] : set.pulls
    const trashes = refused ? [] : set.trashes
    await writeFileAtomic(`${base}.pull.json`, `${serializePullList(pulls)}\n`)
    await writeFileAtomic(`${base}.trash.json`, `${serializeTrashList(trashes)}\n`)
    out.write(
      `dry run: ${set.server.uuid} ${set.server.url}: ${refused ? 'no pull list' : `${pulls.length} pulls`} ` +
        `(${set.deferredPulls} deferred), ${trashes.length} trashes (${set.deferredTrashes} deferred) → ${base}.{pull,trash}.json\n`,
    )
  }
}
