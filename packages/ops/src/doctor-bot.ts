import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { Check } from './doctor.js'

// The doctor's bot line, when BOT_DID is set: has the bot logged in (its sealed session is in Redis, kept as
// long as its refresh token lives), and is its consumer group reading? The tokens stay sealed: the doctor
// checks that a login happened, not the tokens themselves (a refused login stops the bot with exit code 78).

function days(ms: number): string {
  return ms >= 86_400_000 ? `${Math.floor(ms / 86_400_000)} d` : `${Math.round(ms / 60_000)} min`
}

export async function checkBot(redis: Redis, schema: RedisSchema, botDid: string): Promise<Check> {
  const name = 'bot'
  const [ttl, metrics] = await Promise.all([
    redis.pttl(schema.botSession(botDid)),
    redis.hgetall(schema.botMetrics),
  ])
  if (ttl < 0) {
    return {
      name,
      status: 'fail',
      message: `no session for ${botDid} in Redis: the bot has not logged in. Is it running (BOT_IDENTIFIER and BOT_APP_PASSWORD set)? A refused login stops it with exit code 78 and names the variables in its log.`,
    }
  }
  const pending = await redis
    .xpending(schema.eventStream, schema.botGroup)
    .then((s) => Number((s as unknown[])[0] ?? 0))
    .catch(() => null)
  const n = (k: string) => Number(metrics[k] ?? 0)
  const counts = `${n('mentionsSeen')} mentions seen, ${n('repliesPosted')} replies posted, ${n('logins')} logins, ${n('refreshes')} refreshes`
  if (pending === null) {
    return {
      name,
      status: 'warn',
      message: `logged in (session kept ${days(ttl)}), but no \`${schema.botGroup}\` group on the stream yet; ${counts}`,
    }
  }
  return {
    name,
    status: 'ok',
    message: `logged in (session kept ${days(ttl)}); ${pending} mention entries pending; ${counts}`,
  }
}
