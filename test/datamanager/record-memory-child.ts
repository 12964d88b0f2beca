// Child process of collections-memory.test: scans one collections file with a
// sink that walks every reference (as the reference spill does, without its
// fixed-size chunk: that is bounded by chunkSize whatever the record, and
// tested in references.test) and prints `{ baselineKiB, peakKiB, … }`
// (peak = the process's maximum RSS, as the kernel measured it).
import { scanCollections } from '../../datamanager/collections.js'

const file = process.argv[2]!
let walked = 0
const baselineKiB = process.resourceUsage().maxRSS
const summary = await scanCollections(
  file,
  {
    addCollection(c) {
      const refs = c.refs.cursor()
      while (refs.next()) if (refs.hash.length === 32) walked++
    },
  },
  { defaultReplication: 2 },
)
const peakKiB = process.resourceUsage().maxRSS
process.stdout.write(`${JSON.stringify({ baselineKiB, peakKiB, collections: summary.collections, references: summary.references, walked, malformed: summary.malformed })}\n`)
