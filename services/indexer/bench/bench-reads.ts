// Child of bench-indexer: times topPartners in a process of its own, like the API's, so that the bench's
// heap (the million generated events it keeps for the baseline) does not put its GC pauses into the reads.
// Args: redis URL, key prefix, iterations, DIDs. Prints one JSON line: { [did]: samples in ms }.
import { createIndexReader } from '@circles/interaction-index'
import { createSchema } from '@circles/redis-schema'
import { Redis } from 'ioredis'

const [url, prefix, iterations, ...dids] = process.argv.slice(2)
const redis = new Redis(url as string)
const schema = createSchema(prefix as string)
const out: Record<string, number[]> = {}
try {
  for (const did of dids) {
    const samples: number[] = []
    for (let i = 0; i < Number(iterations); i++) {
      // a fresh reader each time: no DID cache, nothing warm but Redis itself
      const reader = createIndexReader(redis, schema)
      const t = performance.now()
      await reader.topPartners({
        did,
        direction: 'both',
        windowHours: 48,
        weights: { like: 1, repost: 2, reply: 3, quote: 3 },
        limit: 50,
      })
      samples.push(performance.now() - t)
    }
    out[did] = samples
  }
  process.stdout.write(`${JSON.stringify(out)}\n`)
} finally {
  redis.disconnect()
}
