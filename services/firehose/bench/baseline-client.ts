import {
  encodeEvents,
  interpretOp,
  type StreamEvent,
  toAccountEvent,
  toIdentityEvent,
} from '@circles/core'
import { createSchema } from '@circles/redis-schema'
import { Firehose } from '@skyware/firehose'
import { Redis } from 'ioredis'
import WebSocket from 'ws'

// The baseline of `pnpm bench:firehose`, run as a child process: the original system's way. Stock
// @skyware/firehose (decodes every block of every CAR), one XADD per interaction as events arrive,
// nothing awaited in the listener (skyware does not await listeners anyway). Exits after the frame
// with seq LAST_SEQ and all COMMITS commits were handled (skyware handles frames concurrently, so
// the last one may finish first) and every XADD was answered; prints one JSON line.
//   RELAY_URL=ws://... REDIS_URL=redis://... REDIS_PREFIX=bench: LAST_SEQ=N COMMITS=C node baseline-client.js

const relay = process.env.RELAY_URL as string
const lastSeq = Number(process.env.LAST_SEQ)
const expectedCommits = Number(process.env.COMMITS)
let sawLast = false
const schema = createSchema(process.env.REDIS_PREFIX ?? 'bench:')
const redis = new Redis(process.env.REDIS_URL as string)

let pending = 0
let xadds = 0
let failed = 0
let commits = 0
let done = false
let started = 0

function publish(events: StreamEvent[]): void {
  for (const e of events) {
    pending++
    redis.xadd(schema.eventStream, '*', 'e', encodeEvents([e])).then(
      () => {
        xadds++
        pending--
        maybeFinish()
      },
      () => {
        failed++
        pending--
        maybeFinish()
      },
    )
  }
}

function maybeFinish(): void {
  if (!done || pending > 0) return
  const elapsed = (performance.now() - started) / 1000
  firehose.close()
  redis.disconnect()
  const { user, system } = process.cpuUsage()
  const cpu_s = (user + system) / 1e6
  process.stdout.write(`${JSON.stringify({ commits, xadds, failed, elapsed_s: elapsed, cpu_s })}\n`)
}

const firehose = new Firehose({ relay, ws: WebSocket as never, autoReconnect: false })
firehose.on('open', () => {
  started = performance.now()
})
firehose.on('commit', (msg) => {
  commits++
  const time = Date.parse(msg.time)
  for (const op of msg.ops) {
    const slash = op.path.indexOf('/')
    const res = interpretOp({
      repo: msg.repo,
      action: op.action,
      collection: op.path.slice(0, slash),
      rkey: op.path.slice(slash + 1),
      record: 'record' in op ? op.record : undefined,
      commitTime: time,
    })
    publish(res.events)
  }
  if (msg.seq >= lastSeq) sawLast = true
  if (sawLast && commits >= expectedCommits) {
    done = true
    maybeFinish()
  }
})
firehose.on('identity', (msg) => {
  const e = toIdentityEvent(msg.did, msg.handle, Date.parse(msg.time))
  if (e) publish([e])
})
firehose.on('account', (msg) => {
  const e = toAccountEvent(msg.did, msg.active, msg.status, Date.parse(msg.time))
  if (e) publish([e])
})
firehose.on('error', ({ error }) => {
  process.stderr.write(`baseline: ${String(error)}\n`)
})
firehose.start()
