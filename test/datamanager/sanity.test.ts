import t from 'tap'
import { checkMounts, checkSanity, type RefusalCode, type ServerMounts, type SanityInput } from '../../datamanager/sanity.js'
import type { CollectionsSummary } from '../../datamanager/collections.js'
import type { IndexStatus } from '../../datamanager/indexes.js'
import type { MountInfo } from '../../datamanager/topology.js'
import { EMPTY_STATE } from '../../datamanager/state.js'

const mount = (uuid: string, deviceId = `dev-${uuid}`): MountInfo => ({
  uuid,
  deviceId,
  priority: 0,
  replication: 1,
  allowWrite: true,
  allowTrash: true,
  storageClasses: ['default'],
})
const server = (uuid: string, mounts: MountInfo[] | undefined): ServerMounts => ({ uuid, url: `http://${uuid}`, mounts, error: mounts ? undefined : 'ECONNREFUSED' })

t.test('sanity: mounts refusals', async (t) => {
  const rows: Array<[string, ServerMounts[], RefusalCode[]]> = [
    ['all answered, all distinct', [server('a', [mount('m1')]), server('b', [mount('m2'), mount('m3')])], []],
    ['a keepstore did not answer', [server('a', [mount('m1')]), server('b', undefined)], ['keepstore-unavailable']],
    ['a mount uuid on two servers', [server('a', [mount('m1')]), server('b', [mount('m1', 'other')])], ['duplicate-mount']],
    ['a mount uuid twice on one server', [server('a', [mount('m1'), mount('m1', 'other')])], ['duplicate-mount']],
    ['two mounts on one device', [server('a', [mount('m1', 'd')]), server('b', [mount('m2', 'd')])], ['duplicate-device']],
    ['empty device ids are never shared', [server('a', [mount('m1', '')]), server('b', [mount('m2', '')])], []],
    ['a server with no mounts is fine', [server('a', [])], []],
  ]
  for (const [name, servers, codes] of rows) t.same(checkMounts(servers).map((r) => r.code), codes, name)
})

const collections = (over: Partial<CollectionsSummary> = {}): CollectionsSummary => ({
  files: 1,
  collections: 100,
  references: 1000,
  malformed: 0,
  malformedRecords: [],
  tooLarge: 0,
  tooLargeRecords: [],
  unreadable: undefined,
  ...over,
})
const index = (state: IndexStatus['state']): IndexStatus => ({ server: 's', mount: 'm', state, lines: 1, error: undefined, read: 'full', fullReason: undefined, bytes: 55, prefixesReread: 0 })
const last = { lastSuccess: { at: '2024-01-01T00:00:00Z', collections: 100, referencedBlocks: 1000 }, topology: undefined }

t.test('sanity: every reason to refuse, and only those', async (t) => {
  const base: SanityInput = { mounts: [], indexes: [index('complete')], collections: collections(), referencedBlocks: 1000, previous: last, force: false }
  const rows: Array<[string, Partial<SanityInput>, RefusalCode[]]> = [
    ['everything fine', {}, []],
    ['no previous run: no drop check', { previous: EMPTY_STATE, referencedBlocks: 1 }, []],
    ['an index without its final line', { indexes: [index('complete'), index('incomplete')] }, ['index-incomplete']],
    ['an index that failed', { indexes: [index('failed')] }, ['index-incomplete']],
    ['an index never finished', { indexes: [index('pending')] }, ['index-incomplete']],
    ['zero collections', { collections: collections({ collections: 0 }), referencedBlocks: 0 }, ['no-collections', 'collections-dropped', 'references-dropped']],
    ['unreadable collections', { collections: collections({ collections: 0, unreadable: 'x: ENOENT' }), previous: EMPTY_STATE }, ['collections-unreadable']],
    ['a malformed record', { collections: collections({ malformed: 1, malformedRecords: [{ file: 'f', line: 3, reason: 'r' }] }) }, ['malformed-collection']],
    ['collections down exactly 10 %', { collections: collections({ collections: 90 }) }, []],
    ['collections down more than 10 %', { collections: collections({ collections: 89 }) }, ['collections-dropped']],
    ['referenced blocks down more than 10 %', { referencedBlocks: 899 }, ['references-dropped']],
    ['referenced blocks down exactly 10 %', { referencedBlocks: 900 }, []],
    ['a previous run with nothing referenced: nothing can drop', { previous: { ...last, lastSuccess: { ...last.lastSuccess, collections: 0, referencedBlocks: 0 } }, referencedBlocks: 0, collections: collections({ collections: 1 }) }, []],
    ['one referenced block before, none now', { previous: { ...last, lastSuccess: { ...last.lastSuccess, referencedBlocks: 1 } }, referencedBlocks: 0 }, ['references-dropped']],
    ['--force keeps every other refusal', { indexes: [index('incomplete')], collections: collections({ collections: 1, malformed: 1 }), force: true }, ['index-incomplete', 'malformed-collection']],
    ['mount refusals come first, then the rest', { mounts: [{ code: 'duplicate-device', message: 'd' }], indexes: [index('failed')] }, ['duplicate-device', 'index-incomplete']],
    ['--force accepts a drop', { referencedBlocks: 1, collections: collections({ collections: 1 }), force: true }, []],
    ['--force does not accept zero collections', { collections: collections({ collections: 0 }), force: true }, ['no-collections']],
    ['growth is fine', { referencedBlocks: 5000, collections: collections({ collections: 500 }) }, []],
  ]
  for (const [name, over, codes] of rows) t.same(checkSanity({ ...base, ...over }).map((r) => r.code), codes, name)
})

t.test('sanity: the malformed refusal names the first file and line', async (t) => {
  const [refusal] = checkSanity({
    mounts: [],
    indexes: [],
    collections: collections({ malformed: 2, malformedRecords: [{ file: '/x/c.jsonl', line: 7, reason: 'invalid JSON' }] }),
    referencedBlocks: 0,
    previous: EMPTY_STATE,
    force: false,
  })
  t.match(refusal?.message, /\/x\/c\.jsonl:7/)
})
