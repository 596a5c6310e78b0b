import { createHash } from 'node:crypto'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import { pipelineFor } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { type AvatarPolicy, fetchAvatar } from './avatar-fetch.js'

// Fetches avatar thumbnails for drawn circles, server-side (each fetch under the rules of avatar-fetch.ts),
// and caches the bytes in Redis so the next drawing of any circle that shows the same person costs no
// request.

/** The AppView's CDN serves a small variant of every avatar; a circle never needs the full one. */
export function thumbnailUrl(url: string): string {
  return url.replace('/img/avatar/', '/img/avatar_thumbnail/')
}

export interface AvatarFetcher {
  /** avatar URL -> data: URI, for those that could be fetched. */
  fetch(urls: readonly string[]): Promise<Map<string, string>>
}

export function createAvatarFetcher(deps: {
  redis: Redis
  schema: RedisSchema
  /** Hosts, schemes, size and time allowed: the server never fetches an arbitrary URL. */
  policy: AvatarPolicy
  ttlSeconds?: number
  concurrency?: number
  log: Logger
}): AvatarFetcher {
  const { redis, schema, log } = deps
  const ttl = deps.ttlSeconds ?? 86_400
  const concurrency = deps.concurrency ?? 8

  async function fetchOne(url: string): Promise<string | null> {
    try {
      return await fetchAvatar(new URL(thumbnailUrl(url)), deps.policy)
    } catch (err) {
      log.debug({ err, url }, 'avatar fetch failed: initials instead')
      return null
    }
  }

  return {
    async fetch(input) {
      const urls = [...new Set(input)]
      const out = new Map<string, string>()
      if (urls.length === 0) return out
      const keys = urls.map((u) => schema.avatar(createHash('sha1').update(u).digest('hex')))
      const pipe = pipelineFor(redis)
      for (const k of keys) pipe.get(k)
      const cached = (await pipe.exec()) ?? []
      const todo: number[] = []
      urls.forEach((u, i) => {
        const v = cached[i]?.[1]
        if (typeof v === 'string' && v.startsWith('data:')) out.set(u, v)
        else if (v !== 'none') todo.push(i)
      })
      let next = 0
      const store = pipelineFor(redis)
      async function worker() {
        while (next < todo.length) {
          const i = todo[next++]!
          const data = await fetchOne(urls[i]!)
          if (data) out.set(urls[i]!, data)
          // Remember failures briefly, so a dead CDN does not cost a timeout on every drawing.
          store.set(keys[i]!, data ?? 'none', 'EX', data ? ttl : 300)
        }
      }
      await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker))
      if (todo.length > 0) await store.exec()
      return out
    },
  }
}
