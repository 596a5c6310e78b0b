import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import { pipelineFor } from '@circles/redis-wire'
import type { Redis } from 'ioredis'

// The admin lists (opt-outs, tracked accounts) live in Redis, and a Redis that comes back empty (a restart
// without persistence, a replica promoted empty, FLUSHALL) used to drop them silently: opted-out accounts
// reappeared in circles. A file beside the API mirrors them while Redis has them, and puts them back when it
// has lost them. A file rather than Postgres: no new server to run next to Redis, and PM2 and compose
// deployments run the API on one host; several API hosts each mirror the whole sets, so any one refills them.
// Redis tells "lost" from "empty" by a marker key set once the lists are known to be whole.

export interface ListsSnapshot {
  optOuts: string[]
  tracked: string[]
  /**
   * Why each account opted out (packages/interaction-index opt-outs.ts): kept too, so that after a refill
   * an account that opted out by a block can still come back by deleting it.
   */
  admin: string[]
  blocks: Record<string, string>
  labels: string[]
}

export type SyncResult = 'mirrored' | 'reseeded' | 'marked'

export function readListsFile(file: string): ListsSnapshot {
  try {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<ListsSnapshot>
    const dids = (v: unknown) =>
      Array.isArray(v) ? v.filter((d): d is string => typeof d === 'string') : []
    const blocks: Record<string, string> = {}
    if (raw.blocks && typeof raw.blocks === 'object') {
      for (const [did, rkey] of Object.entries(raw.blocks))
        if (typeof rkey === 'string') blocks[did] = rkey
    }
    return {
      optOuts: dids(raw.optOuts),
      tracked: dids(raw.tracked),
      admin: dids(raw.admin),
      blocks,
      labels: dids(raw.labels),
    }
  } catch {
    return { optOuts: [], tracked: [], admin: [], blocks: {}, labels: [] }
  }
}

/** Writes atomically (a temporary file renamed over the old), so a crash never leaves half a file. */
function writeListsFile(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, `${text}\n`)
  renameSync(tmp, file)
}

export interface DurableLists {
  /** Mirrors Redis into the file, or refills Redis from the file when Redis lost the lists. */
  sync(): Promise<SyncResult>
  /** Runs `sync` every `intervalMs` (errors logged: Redis may be away for a while). */
  start(intervalMs: number): void
  stop(): void
}

export function createDurableLists(
  redis: Redis,
  schema: RedisSchema,
  file: string,
  log: Logger,
): DurableLists {
  let written = ''
  let timer: NodeJS.Timeout | undefined

  function mirror(lists: ListsSnapshot): void {
    const text = JSON.stringify({
      optOuts: [...lists.optOuts].sort(),
      tracked: [...lists.tracked].sort(),
      admin: [...lists.admin].sort(),
      blocks: Object.fromEntries(
        Object.entries(lists.blocks).sort(([a], [b]) => a.localeCompare(b)),
      ),
      labels: [...lists.labels].sort(),
    })
    if (text === written) return
    writeListsFile(file, text)
    written = text
  }

  async function sync(): Promise<SyncResult> {
    const [marked, optOuts, tracked, admin, blocks, labels] = await Promise.all([
      redis.exists(schema.listsSeeded),
      redis.smembers(schema.optOuts),
      redis.smembers(schema.tracked),
      redis.smembers(schema.optOutsAdmin),
      redis.hgetall(schema.optOutsBlocks),
      redis.smembers(schema.optOutsLabels),
    ])
    const now: ListsSnapshot = { optOuts, tracked, admin, blocks, labels }
    if (marked === 1) {
      mirror(now)
      return 'mirrored'
    }
    const saved = readListsFile(file)
    if (saved.optOuts.length === 0 && saved.tracked.length === 0) {
      await redis.set(schema.listsSeeded, '1')
      mirror(now)
      return 'marked'
    }
    // Lost: put back what the file kept, beside anything added since (SADD keeps both; a block seen since
    // wins over the saved one), then tell every API process that the opt-outs changed, as an admin does.
    // Keys of several slots (the opt-out family shares one; tracked, the version and the mark have their
    // own): on a Redis Cluster no one MULTI holds them. In three steps instead, each idempotent: the lists,
    // then the news, then the mark, so a restore cut short is made again whole at the next sync.
    const lists = pipelineFor(redis)
    if (saved.optOuts.length > 0) lists.sadd(schema.optOuts, ...saved.optOuts)
    if (saved.tracked.length > 0) lists.sadd(schema.tracked, ...saved.tracked)
    if (saved.admin.length > 0) lists.sadd(schema.optOutsAdmin, ...saved.admin)
    if (saved.labels.length > 0) lists.sadd(schema.optOutsLabels, ...saved.labels)
    for (const [did, rkey] of Object.entries(saved.blocks))
      lists.hsetnx(schema.optOutsBlocks, did, rkey)
    const replies = [
      ...((await lists.exec()) ?? []),
      ...((await redis
        .pipeline()
        .incr(schema.optOutsVersion)
        .publish(schema.optOutsChannel, 'changed')
        .exec()) ?? []),
    ]
    const failed = replies.find(([err]) => err)?.[0]
    if (failed) throw failed
    await redis.set(schema.listsSeeded, '1')
    log.error(
      { file, optOuts: saved.optOuts.length, tracked: saved.tracked.length },
      'Redis lost the opt-out and tracked lists (a restart without persistence?): put them back from the file',
    )
    mirror({
      optOuts: [...new Set([...optOuts, ...saved.optOuts])],
      tracked: [...new Set([...tracked, ...saved.tracked])],
      admin: [...new Set([...admin, ...saved.admin])],
      blocks: { ...saved.blocks, ...blocks },
      labels: [...new Set([...labels, ...saved.labels])],
    })
    return 'reseeded'
  }

  return {
    sync,
    start(intervalMs) {
      timer = setInterval(() => {
        sync().catch((err) =>
          log.warn({ err, file }, 'could not sync the admin lists with their file'),
        )
      }, intervalMs)
      timer.unref()
    },
    stop() {
      if (timer) clearInterval(timer)
    },
  }
}
