// Child process for the crash test: runs a roll-up slowly, printing progress, until the parent kills it
// with SIGKILL (no cleanup, no finally blocks: as a power cut or OOM kill would).
import { createSchema } from '@circles/redis-schema'
import { Redis } from 'ioredis'
import { createLiveHours } from '../src/live-index.js'
import { readRollupCursor, runRollup } from '../src/rollup.js'
import { newRollupFence } from './helpers.js'

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
const schema = createSchema(process.env.PREFIX ?? '')
const now = Number(process.env.NOW)

await runRollup(redis, schema, createLiveHours(redis, schema), {
  now,
  liveWindowHours: 48,
  retentionDays: 90,
  fence: await newRollupFence(redis, schema),
  chunk: 10,
  onChunk: async (done) => {
    const cursor = await readRollupCursor(redis, schema)
    process.stdout.write(`chunk ${cursor} ${done}\n`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  },
})
process.stdout.write('finished\n')
redis.disconnect()
