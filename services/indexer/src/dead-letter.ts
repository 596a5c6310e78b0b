import type { RedisSchema, ShardKeys } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { PoisonEntry } from './entries.js'

/** Longest error message kept in a dead letter. */
const MAX_ERROR_CHARS = 1000

/**
 * The fields of a dead letter: the entry's own fields as they were (`e`: its events), then where it came
 * from and why: `id` (its id in the event stream), `error`, `consumer`, `at` (ms). Ours come last so that a
 * reader that folds the fields into an object (last one wins) gets them even if a foreign entry had a
 * field of the same name. Pure.
 */
export function deadLetterFields(
  letter: PoisonEntry,
  consumer: string,
  atMs: number,
): (string | Buffer)[] {
  return [
    ...letter.fields,
    'id',
    letter.id,
    'error',
    letter.error.slice(0, MAX_ERROR_CHARS),
    'consumer',
    consumer,
    'at',
    String(atMs),
  ]
}

/**
 * Acknowledges a batch's entries of stream shard `shard`, copying its poison entries to that shard's
 * dead-letter stream first. Copy and acknowledgement go in one MULTI (the dead-letter stream shares its
 * event stream's slot): a crash between
 * them can neither lose a poison entry nor copy it twice, and under OOM the whole MULTI is refused, so
 * nothing is acknowledged that was not copied. The copy is trimmed with `MAXLEN ~ maxLen` (oldest first).
 * Returns how many entries were still pending in the group (XACK's reply).
 */
export async function acknowledge(
  redis: Redis,
  schema: RedisSchema,
  shard: ShardKeys,
  ids: readonly Buffer[],
  letters: readonly PoisonEntry[],
  consumer: string,
  maxLen: number,
): Promise<number> {
  if (letters.length === 0) return redis.xack(shard.stream, schema.indexerGroup, ...ids)
  const multi = redis.multi()
  const now = Date.now()
  for (const letter of letters) {
    multi.xadd(
      shard.deadLetters,
      'MAXLEN',
      '~',
      maxLen,
      '*',
      ...deadLetterFields(letter, consumer, now),
    )
  }
  multi.xack(shard.stream, schema.indexerGroup, ...ids)
  const replies = await multi.exec()
  if (replies === null) throw new Error('the dead-letter transaction was aborted')
  for (const [err] of replies) if (err) throw err
  return Number(replies.at(-1)?.[1] ?? 0)
}
