import { DAY_MS } from '@circles/core'
import { DidCache, didId, rememberDids, resolveIds } from '@circles/interaction-index'
import { encodeDayBlob, forEachPackedRecord, type PackedRecord } from '@circles/long-term'
import type { RedisSchema } from '@circles/redis-schema'
import { luaSource, withLuaSource } from '@circles/redis-wire'
import type { ChainableCommander, Redis } from 'ioredis'
import type { DayCounts } from './classify.js'

// The backfilled day blobs of one source repo: the account's own `bs` hash (only its own repo writes it:
// replaced whole, in one MULTI) and one `br` hash per partner (many sources write those: each call replaces
// the source's records only, lua/backfill-received.lua). Both are replacements, not additions, so a rerun
// after a kill -9, or two runs at once, leave what one run leaves.
//
// Order: the DID table entries first (every id a blob holds must resolve: the roll-up's fold does the same,
// with the same epoch check against a table sweep reclaiming an entry in between), then `bs` (it names the
// partners, so a rerun finds the `br` hashes of partners the repo no longer has and strips them), then
// the `br` hashes.

const RECEIVED_LUA = luaSource(import.meta.url, 'backfill-received')
const PIPELINE = 500

type WithScript = Redis & {
  backfillReceived(key: string, ...args: (string | number | Buffer)[]): Promise<number>
}

function withScript(redis: Redis): WithScript {
  const r = redis as WithScript
  if (typeof r.backfillReceived !== 'function') {
    redis.defineCommand('backfillReceived', { numberOfKeys: 1, lua: RECEIVED_LUA })
  }
  return r
}

export interface DayWriteResult {
  /** Day fields of the account's `bs` hash, partners whose `br` got records, partners stripped only. */
  days: number
  partners: number
  stripped: number
}

/** Adds (day * 4 + kind) -> count entries to records per day, all naming `partner`. */
function addByDay(out: Map<number, PackedRecord[]>, m: Map<number, number>, partner: Buffer): void {
  for (const [k, count] of m) {
    const day = Math.floor(k / 4)
    const list = out.get(day) ?? []
    if (list.length === 0) out.set(day, list)
    list.push({ kind: k % 4, partner, count })
  }
}

/** Records per day of the sent side: every partner's. */
function sentByDay(days: DayCounts): Map<number, PackedRecord[]> {
  const out = new Map<number, PackedRecord[]>()
  for (const [partner, m] of days) addByDay(out, m, didId(partner))
  return out
}

/** One partner's `br` script arguments after the key and the source: expire-at, then day, records pairs. */
function receivedArgs(m: Map<number, number>, source: Buffer, retentionDays: number) {
  const perDay = new Map<number, PackedRecord[]>()
  addByDay(perDay, m, source)
  const args: (string | Buffer)[] = [String(expireAt(Math.max(...perDay.keys()), retentionDays))]
  for (const [day, records] of perDay) args.push(String(day), encodeDayBlob(0, records).subarray(1))
  return args
}

/** A long-term hash expires one retention after its newest day, as the roll-up's do. */
function expireAt(day: number, retentionDays: number): number {
  return (day + retentionDays + 1) * DAY_MS
}

/** The partners' ids the account's current `bs` hash names (what a previous run wrote). */
async function previousPartners(redis: Redis, key: string): Promise<Set<string>> {
  const ids = new Set<string>()
  const h = await redis.hgetallBuffer(key)
  for (const blob of Object.values(h)) {
    forEachPackedRecord(blob, (r) => ids.add(r.partner.toString('latin1')))
  }
  return ids
}

async function exec(pipe: ChainableCommander): Promise<void> {
  for (const [err] of (await pipe.exec()) ?? []) if (err) throw withLuaSource(err)
}

export async function writeDayBlobs(
  redis: Redis,
  schema: RedisSchema,
  did: string,
  days: DayCounts,
  opts: { retentionDays: number },
): Promise<DayWriteResult> {
  const r = withScript(redis)
  const source = didId(did)
  const sentKey = schema.longTerm(did, 'bs')
  const byDay = sentByDay(days)

  const newIds = new Set([...days.keys()].map((p) => didId(p).toString('latin1')))
  const gone = [...(await previousPartners(redis, sentKey))].filter((id) => !newIds.has(id))
  const goneDids = [
    ...(await resolveIds(redis, schema, gone, new DidCache(gone.length + 1))).values(),
  ]

  const epoch = await redis.get(schema.didTableEpoch)
  const names = [did, ...days.keys()]
  await rememberDids(redis, schema, names)

  const sent = redis.multi().del(sentKey)
  let newestDay = -1
  for (const [day, records] of byDay) {
    sent.hset(sentKey, String(day), encodeDayBlob(0, records))
    newestDay = Math.max(newestDay, day)
  }
  if (newestDay >= 0) sent.pexpireat(sentKey, expireAt(newestDay, opts.retentionDays))
  await exec(sent)

  let pipe = r.pipeline()
  const flush = async () => {
    if (pipe.length === 0) return
    await exec(pipe)
    pipe = r.pipeline()
  }
  for (const [partner, m] of days) {
    const args = receivedArgs(m, source, opts.retentionDays)
    ;(pipe as unknown as WithScript).backfillReceived(
      schema.longTerm(partner, 'br'),
      source,
      ...args,
    )
    if (pipe.length >= PIPELINE) await flush()
  }
  for (const partner of goneDids) {
    ;(pipe as unknown as WithScript).backfillReceived(schema.longTerm(partner, 'br'), source, '0')
    if (pipe.length >= PIPELINE) await flush()
  }
  await flush()
  // A table sweep that reclaimed an entry between the names and the blobs moved the epoch: write them again.
  if ((await redis.get(schema.didTableEpoch)) !== epoch) await rememberDids(redis, schema, names)
  return { days: byDay.size, partners: days.size, stripped: goneDids.length }
}
