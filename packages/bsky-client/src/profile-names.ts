import type { RedisSchema } from '@circles/redis-schema'
import { pipelineFor } from '@circles/redis-wire'
import type { ChainableCommander, Redis } from 'ioredis'

// The name index beside the profile cache (redis-schema `profileNames`): one sorted set whose members all
// score 0, so ZRANGEBYLEX walks them in byte order and a prefix is one range. A member is `h:<handle>\0<did>`
// or `n:<display name, folded>\0<did>`: the DID rides in the member because a lex set has no value.
// Profiles expire by TTL but members cannot, so each member's last write time is kept in
// `profileNamesSeen`, and `trimProfileNames` drops those older than the profile TTL (their profile has
// expired unless written again, which would have refreshed them) and then the oldest beyond a cap.

/** Longest prefix or folded name the index compares (longer names are cut: a prefix never needs more). */
export const NAME_MAX_CHARS = 64

/** Lowercased, compatibility-normalised, spaces collapsed, cut: how names are stored and prefixes asked. */
export function foldName(s: string): string {
  return s
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s\p{Cc}]+/gu, ' ')
    .trim()
    .slice(0, NAME_MAX_CHARS)
}

interface Named {
  did: string
  handle?: string
  displayName?: string
}

/** The index members of one profile. */
export function nameMembers(p: Named): string[] {
  const out: string[] = []
  if (p.handle) out.push(`h:${p.handle.toLowerCase()}\0${p.did}`)
  const name = p.displayName ? foldName(p.displayName) : ''
  if (name) out.push(`n:${name}\0${p.did}`)
  return out
}

/** Adds the profiles' members to a pipeline the caller runs (the one that writes the profiles). */
export function indexNames(
  pipe: ChainableCommander,
  schema: RedisSchema,
  profiles: readonly Named[],
  now: number,
): void {
  const members = profiles.flatMap(nameMembers)
  if (members.length === 0) return
  pipe.zadd(schema.profileNames, ...members.flatMap((m) => [0, m]))
  pipe.zadd(schema.profileNamesSeen, ...members.flatMap((m) => [now, m]))
}

export interface NameHit {
  did: string
  /** `handle` when the handle matched, `name` when the folded display name did. */
  by: 'handle' | 'name'
  /** What the member says: the handle, or the folded display name. */
  value: string
  member: string
}

/** Members starting with the folded `prefix`, handles first, then names; at most `max` of each. */
export async function searchNames(
  redis: Redis,
  schema: RedisSchema,
  prefix: string,
  max: number,
): Promise<NameHit[]> {
  const range = (tag: string) => {
    const from = Buffer.from(`[${tag}${prefix}`)
    // 0xff sorts after every byte of UTF-8 text: the end of everything that starts with the prefix.
    const to = Buffer.concat([Buffer.from(`[${tag}${prefix}`), Buffer.from([0xff])])
    return [from, to] as const
  }
  const [h, n] = [range('h:'), range('n:')]
  const replies = await redis
    .pipeline()
    .zrangebylex(schema.profileNames, h[0], h[1], 'LIMIT', 0, max)
    .zrangebylex(schema.profileNames, n[0], n[1], 'LIMIT', 0, max)
    .exec()
  const hits: NameHit[] = []
  for (const [err, list] of replies ?? []) {
    if (err) throw err
    for (const member of list as string[]) {
      const cut = member.indexOf('\0')
      if (cut < 2) continue
      hits.push({
        did: member.slice(cut + 1),
        by: member.startsWith('h:') ? 'handle' : 'name',
        value: member.slice(2, cut),
        member,
      })
    }
  }
  return hits
}

/** Drops members (from both sets): stale ones a reader found. */
export async function dropNames(
  redis: Redis,
  schema: RedisSchema,
  members: readonly string[],
): Promise<void> {
  if (members.length === 0) return
  // Two keys of two slots (not hash-tagged): on a cluster maybe two nodes.
  await pipelineFor(redis)
    .zrem(schema.profileNames, ...members)
    .zrem(schema.profileNamesSeen, ...members)
    .exec()
}

const TRIM_BATCH = 1000

/**
 * Drops members last written more than `maxAgeMs` ago, then the oldest beyond `maxMembers`; at most
 * `maxBatches` batches a call, so one call never holds Redis long. Answers how many went. A member written
 * again between the read and the removal is removed too: it comes back with its profile's next write.
 */
export async function trimProfileNames(
  redis: Redis,
  schema: RedisSchema,
  opts: { maxAgeMs: number; maxMembers: number; now: number; maxBatches?: number },
): Promise<number> {
  let removed = 0
  for (let b = 0; b < (opts.maxBatches ?? 10); b++) {
    let batch = await redis.zrangebyscore(
      schema.profileNamesSeen,
      '-inf',
      opts.now - opts.maxAgeMs,
      'LIMIT',
      0,
      TRIM_BATCH,
    )
    if (batch.length === 0) {
      const excess = (await redis.zcard(schema.profileNamesSeen)) - opts.maxMembers
      if (excess <= 0) break
      batch = await redis.zrange(schema.profileNamesSeen, 0, Math.min(excess, TRIM_BATCH) - 1)
      if (batch.length === 0) break
    }
    await dropNames(redis, schema, batch)
    removed += batch.length
  }
  return removed
}
