import { decodeMention, type MentionEvent } from '@circles/core'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { BotCounters } from './metrics.js'

// The `bot` consumer group on the event stream. It sees every entry, keeps the mention entries (field `m`,
// core/mention.ts) and acknowledges the rest at once. An entry is acknowledged after each of its lines was
// handled; one whose handling failed stays pending and is read again (this consumer's pending entries
// first, XREADGROUP ... 0) after a pause, so a crash or an API outage delays a reply and never drops it.

type Fields = string[] | null
type Entry = [id: string, fields: Fields]

const M = 'm'

export interface ReaderDeps {
  reads: Redis
  redis: Redis
  schema: RedisSchema
  consumer: string
  blockMs: number
  counters: BotCounters
  log: Logger
  /** Handles one line; throws to leave its entry pending. */
  onMention(m: MentionEvent): Promise<void>
  /** Pause after a failure (ms). @default 5000 */
  retryMs?: number
}

/** Creates the group at the stream's end (a new bot answers nothing from before it), once. */
export async function ensureGroup(redis: Redis, schema: RedisSchema): Promise<void> {
  try {
    await redis.xgroup('CREATE', schema.eventStream, schema.botGroup, '$', 'MKSTREAM')
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('BUSYGROUP')) throw err
  }
}

function mentionLines(fields: Fields): string[] {
  if (fields === null) return []
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === M) return (fields[i + 1] as string).split('\n')
  }
  return []
}

export function createMentionReader(deps: ReaderDeps) {
  const { reads, redis, schema, consumer, counters, log } = deps
  const retryMs = deps.retryMs ?? 5000
  let running = false
  // After a failure, this consumer's own pending entries are read again before new ones.
  let backlog = true

  async function read(): Promise<Entry[]> {
    const id = backlog ? '0' : '>'
    const args = ['GROUP', schema.botGroup, consumer, 'COUNT', 100] as const
    const reply = (
      backlog
        ? await reads.xreadgroup(...args, 'STREAMS', schema.eventStream, id)
        : await reads.xreadgroup(...args, 'BLOCK', deps.blockMs, 'STREAMS', schema.eventStream, id)
    ) as [string, Entry[]][] | null
    const entries = reply?.[0]?.[1] ?? []
    if (backlog && entries.length === 0) backlog = false
    return entries
  }

  /** Handles one entry's lines; true when it may be acknowledged. */
  async function handleEntry(fields: Fields): Promise<boolean> {
    for (const line of mentionLines(fields)) {
      const m = decodeMention(line)
      if (m === null) {
        counters.badLines++
        continue
      }
      try {
        await deps.onMention(m)
      } catch (err) {
        counters.failures++
        log.error({ err, author: m.author, rkey: m.rkey }, 'answering a mention failed (retried)')
        return false
      }
    }
    return true
  }

  async function loop(): Promise<void> {
    while (running) {
      let entries: Entry[]
      try {
        entries = await read()
      } catch (err) {
        if (!running) return
        log.warn({ err }, 'reading the event stream failed')
        await new Promise((r) => setTimeout(r, retryMs))
        continue
      }
      const done: string[] = []
      for (const [id, fields] of entries) {
        if (!running) break
        if (!(await handleEntry(fields))) {
          backlog = true
          break
        }
        done.push(id)
      }
      if (done.length > 0) {
        await redis
          .xack(schema.eventStream, schema.botGroup, ...done)
          .catch((err: unknown) => log.warn({ err }, 'XACK failed (the entries come again)'))
      }
      if (backlog && running && done.length < entries.length)
        await new Promise((r) => setTimeout(r, retryMs))
    }
  }

  let loopDone: Promise<void> | null = null
  return {
    start() {
      running = true
      loopDone = loop()
    },
    async stop() {
      running = false
      await loopDone
    },
  }
}
