import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createSchema } from '@circles/redis-schema'
import { deleteByPrefix } from '@circles/testkit'
import { Redis } from 'ioredis'
import { readEnv, toConfig } from '../src/config.js'
import { createFirehoseService } from '../src/service.js'

// Quick end-to-end throughput check of this service (the full baseline comparison is `pnpm
// bench:firehose`): a loopback relay in a child process replays a synthetic corpus, the service writes to
// the real Redis under a private prefix. Prints one JSON line last.
//   node services/firehose/dist/bench/bench-service.js [frames]

const n = Number(process.argv[2] ?? 100_000)
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `bench:fh:${randomBytes(4).toString('hex')}:`
const child = spawn(
  process.execPath,
  [fileURLToPath(new URL('./replay-server.js', import.meta.url)), String(n)],
  { stdio: ['ignore', 'pipe', 'inherit'] },
)
const line = await new Promise<string>((resolve) =>
  createInterface({ input: child.stdout! }).once('line', resolve),
)
const [url, lastSeq] = line.split(' ') as [string, string]
const redis = new Redis(redisUrl)
const schema = createSchema(prefix)
const config = toConfig(
  readEnv({
    ...process.env,
    RELAY_URL: url,
    REDIS_PREFIX: prefix,
    FIREHOSE_CURSOR: '0',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    FIREHOSE_MAX_LAG: '1000000000',
    FIREHOSE_RESUME_LAG: '0',
    FIREHOSE_MAXLEN: '2000000000',
  }),
)
const service = createFirehoseService(config, { redis })
let peakRss = process.memoryUsage().rss
const rssTimer = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
}, 50)
const start = performance.now()
const cpu0 = process.cpuUsage()
await service.start()
while ((await redis.get(schema.firehoseCursor)) !== lastSeq) {
  await new Promise((r) => setTimeout(r, 5))
}
const seconds = (performance.now() - start) / 1000
const cpu = process.cpuUsage(cpu0)
const cpuSeconds = (cpu.user + cpu.system) / 1e6
clearInterval(rssTimer)
await service.close()
const entries = await redis.xlen(schema.eventStream)
await deleteByPrefix(redis, prefix)
redis.disconnect()
child.kill('SIGTERM')
console.log(
  JSON.stringify({
    bench: 'firehose-service',
    commits: n,
    commits_per_s: Math.round(n / seconds),
    // Per second of this process's own CPU: steadier than wall time on a shared, busy machine.
    commits_per_cpu_s: Math.round(n / cpuSeconds),
    entries,
    peak_rss_mb: Math.round(peakRss / 2 ** 20),
  }),
)
