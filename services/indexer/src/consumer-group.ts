import type { Logger } from '@circles/logging'
import type { RedisSchema, ShardKeys } from '@circles/redis-schema'
import { parseConsumers } from '@circles/stream-info'
import { type Redis, ReplyError } from 'ioredis'
import type { IndexerConfig } from './config.js'
import type { RawEntry } from './entries.js'
import type { IndexerCounters } from './metrics.js'

export interface ClaimPage {
  /** Where the next page starts; `0-0` when the scan is over. */
  next: string
  entries: RawEntry[]
  /** Ids of pending entries no longer in the stream (trimmed, XDEL): Redis dropped them from the group. */
  deleted: string[]
}

export interface ConsumerGroup {
  /** Creates the group (at the stream's start, the stream too) unless it exists. True if it was created. */
  ensure(): Promise<boolean>
  /**
   * The group vanished (NOGROUP): creates it again, once for all the calls that saw it go, and calls
   * `onRecreated` first, since a Redis that lost the group may have lost more (FLUSHALL, an empty restart).
   */
  recreate(): Promise<void>
  /** Deletes consumers idle for `consumerPruneIdleMs` that left nothing pending (ended processes). */
  prune(): Promise<void>
  /** XREADGROUP from `id` (`>` new entries, `0` this consumer's own pending ones). */
  read(id: string, block: boolean): Promise<RawEntry[]>
  /** One XAUTOCLAIM page of entries pending longer than `claimIdleMs` in any consumer. */
  claimPage(start: string): Promise<ClaimPage>
}

export interface ConsumerGroupDeps {
  /** Carries XREADGROUP, which may block. */
  reads: Redis
  /** Everything else. */
  redis: Redis
  schema: RedisSchema
  /** The stream shard this group object reads (each shard has its own group of the same name). */
  shard: ShardKeys
  config: IndexerConfig
  counters: IndexerCounters
  onRecreated(): void
  log: Logger
}

export function createConsumerGroup(d: ConsumerGroupDeps): ConsumerGroup {
  const { reads, redis, config, log } = d
  const stream = d.shard.stream
  const group = d.schema.indexerGroup
  const me = config.consumer
  let recreating: Promise<void> | null = null

  async function ensure(): Promise<boolean> {
    try {
      // From 0, not $: after a loss, what the stream still holds was never acknowledged into this group.
      await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM')
      return true
    } catch (err) {
      // A sibling process was first.
      if (err instanceof ReplyError && (err as Error).message.startsWith('BUSYGROUP')) return false
      throw err
    }
  }

  async function recreateOnce(): Promise<void> {
    d.onRecreated()
    if (await ensure()) {
      d.counters.groupRecreated++
      const length = await redis.xlen(stream).catch(() => null)
      log.warn(
        { stream, group, entries: length },
        'the consumer group was gone (Redis restarted empty, FLUSHALL or XGROUP DESTROY): created it again from the start of the stream; what the stream no longer holds is lost to the index',
      )
    } else {
      log.info(
        { stream, group },
        'the consumer group exists again (created by another call or indexer)',
      )
    }
  }

  return {
    ensure,

    recreate() {
      recreating ??= recreateOnce().finally(() => {
        recreating = null
      })
      return recreating
    },

    async prune() {
      const list = parseConsumers(await redis.call('XINFO', 'CONSUMERS', stream, group))
      const dead = list
        .filter((c) => c.name !== me && c.pending === 0 && c.idle >= config.consumerPruneIdleMs)
        .map((c) => c.name)
      if (dead.length === 0) return
      const pipe = redis.pipeline()
      for (const name of dead) pipe.xgroup('DELCONSUMER', stream, group, name)
      await pipe.exec()
      log.info({ consumers: dead }, 'deleted idle consumers without pending entries')
    },

    async read(id, block) {
      const args: (string | number)[] = ['GROUP', group, me, 'COUNT', config.batchEntries]
      if (block) args.push('BLOCK', config.blockMs)
      args.push('STREAMS', stream, id)
      const reply = (await reads.callBuffer('XREADGROUP', ...args)) as [Buffer, RawEntry[]][] | null
      return reply?.[0]?.[1] ?? []
    },

    async claimPage(start) {
      const reply = (await redis.callBuffer(
        'XAUTOCLAIM',
        stream,
        group,
        me,
        config.claimIdleMs,
        start,
        'COUNT',
        config.batchEntries,
      )) as [Buffer, (RawEntry | null)[], Buffer[]?]
      // Redis 7 lists deleted entries' ids apart (third element); 6.2 gave nil in their place, id unknown.
      const deleted = (reply[2] ?? []).map(String)
      const entries: RawEntry[] = []
      for (const e of reply[1]) {
        if (e !== null && Array.isArray(e[1])) entries.push(e)
        else deleted.push(e?.[0] ? String(e[0]) : '(unknown id)')
      }
      return { next: reply[0].toString(), entries, deleted }
    },
  }
}
