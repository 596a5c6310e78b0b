// Dev aid (not a benchmark of record): times foldHour alone on generated rows, against REDIS_URL.
import { createSchema } from '@circles/redis-schema'
import { prng } from '@circles/testkit'
import { Redis } from 'ioredis'
import { createRollupFence } from '../src/fence.js'
import { foldHour } from '../src/fold.js'
import { loadHour } from '../src/hour-table.js'
import type { HourRow } from '../src/live-source.js'

const ROWS = Number(process.env.ROWS ?? 500_000)
const POP = Number(process.env.POP ?? 100_000)
const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
const rand = prng(7)
const dids = Array.from({ length: POP }, () => {
  let s = 'did:plc:'
  for (let i = 0; i < 24; i++) s += B32[Math.floor(rand() * 32)]
  return s
})
const pick = () => dids[Math.floor(POP * rand() ** Number(process.env.SKEW ?? 4))] as string
const rows: HourRow[] = []
for (let i = 0; i < ROWS; i++) {
  const a = pick()
  const s = pick()
  if (a !== s) rows.push({ author: a, subject: s, kind: 'like', count: 1 })
}
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
const schema = createSchema(`prof:${process.pid}:`)
const hour = Math.floor(Date.now() / 3_600_000) - 50
const { table } = await loadHour(
  {
    hours: async () => [hour],
    scanHour: async (_h, cb) => cb(rows),
    freeHour: async () => {},
  },
  hour,
)
const t0 = performance.now()
const fence = createRollupFence(redis, schema, 1)
const r = await foldHour(redis, schema, hour, table, { retentionDays: 90, fence })
process.stdout.write(
  `fold ${table.n} rows: ${Math.round(performance.now() - t0)} ms ${JSON.stringify(r)}\n`,
)
let cursor = '0'
do {
  const [next, keys] = await redis.scan(cursor, 'MATCH', `${schema.prefix}*`, 'COUNT', 5000)
  cursor = next
  if (keys.length) await redis.unlink(...keys)
} while (cursor !== '0')
redis.disconnect()
