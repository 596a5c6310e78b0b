import { DAY_MS } from '@circles/core'
import { keySlot } from '@circles/redis-wire'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  execFenced,
  type RollupPipeline,
  type RollupScripts,
  withRollupScripts,
} from '../src/fence.js'
import { acquireLock, LockLostError } from '../src/lock.js'
import { luaScript } from '../src/lua.js'
import { makeDids } from './helpers.js'

// Each script in lua/, called directly against the real Redis (the roll-up's use of them is in
// rollup.test.ts and rollup-race.test.ts).

const [ALICE] = makeDids(1, 21) as [string]
const DAY = Math.floor(Date.now() / DAY_MS) - 1
const EXPIRE = (DAY + 91) * DAY_MS

/** A day blob: the mark byte, then records (their bytes do not matter to the scripts). */
function blob(mark: number, len: number): Buffer {
  const b = Buffer.alloc(len, 0x41)
  b[0] = mark
  return b
}

describe('lua scripts', () => {
  let t: TestRedis
  let r: RollupScripts
  beforeEach(async () => {
    t = await createTestRedis('sched-lua')
    r = withRollupScripts(t.redis)
  })
  afterEach(async () => {
    await t.cleanup()
  })

  it('lock-acquire-fenced: one holder at a time, each with a number above the last', async () => {
    const key = t.schema.schedulerLock('rollup')
    const counter = t.schema.schedulerFenceCounter('rollup')
    // The counter shares the lock's slot, so the script is cluster-safe.
    expect(keySlot(counter)).toBe(keySlot(key))
    const first = await acquireLock(t.redis, key, 10_000, counter)
    expect(first?.fence).toBe(1)
    expect(await acquireLock(t.redis, key, 10_000, counter)).toBeNull()
    expect(await t.redis.get(counter)).toBe('1') // a refused attempt draws no number
    await first?.release()
    const second = await acquireLock(t.redis, key, 10_000, counter)
    expect(second?.fence).toBe(2)
    // Without a counter the lock is as before: no number.
    const other = await acquireLock(t.redis, t.schema.schedulerLock('prune'), 10_000)
    expect(other?.fence).toBeNull()
  })

  it('fence-claim: raises the number, refuses a lower one', async () => {
    const f = t.schema.rollupFence('a1')
    expect(await r.rollupClaim(f, 5)).toBe(1)
    expect(await r.rollupClaim(f, 7)).toBe(1)
    expect(await r.rollupClaim(f, 7)).toBe(1)
    await expect(r.rollupClaim(f, 6)).rejects.toThrow(/^FENCED/)
    expect(await t.redis.get(f)).toBe('7')
  })

  it('fenced-fold: writes new blobs, skips folded hours, compare-and-sets merges, refuses a stale fence', async () => {
    const f = t.schema.rollupFence('a1')
    const s = t.schema.longTerm(ALICE, 's')
    const rk = t.schema.longTerm(ALICE, 'r')
    await t.redis.set(f, '7')
    const fold = (
      fence: number,
      mark: number,
      sent: Buffer | '',
      had: number[],
      recv: Buffer | '' = '',
    ) => r.rollupFoldBuffer(f, s, rk, fence, String(DAY), mark, EXPIRE, sent, ...had, recv, 0, 0)

    await expect(fold(6, 3, blob(3, 10), [0, 0])).rejects.toThrow(/^FENCED/)
    expect(await t.redis.exists(s)).toBe(0)
    // New field: written with the expiry; nothing for the other direction.
    expect(await fold(7, 3, blob(3, 10), [0, 0])).toEqual([1, -1])
    expect(await t.redis.pexpiretime(s)).toBe(EXPIRE)
    // The same hour again, or an earlier one: already there.
    expect(await fold(7, 3, blob(3, 12), [0, 0])).toEqual([0, -1])
    expect(await fold(7, 2, blob(2, 12), [0, 0])).toEqual([0, -1])
    // A later hour, expecting no field: the current blob comes back for a merge.
    const [cur] = await fold(7, 5, blob(5, 20), [0, 0])
    expect(cur).toEqual(blob(3, 10))
    // The merge, over the blob it was computed from: written.
    expect(await fold(7, 5, blob(5, 20), [3, 10])).toEqual([1, -1])
    expect(await t.redis.hgetBuffer(s, String(DAY))).toEqual(blob(5, 20))
    // A merge computed from an older blob (a runner that read it before the write above): not written,
    // and since the field already has hour 5, nothing more to do.
    expect(await fold(7, 5, blob(5, 15), [3, 10])).toEqual([0, -1])
    // For a later hour, the newer blob comes back to merge into instead.
    expect(await fold(7, 6, blob(6, 25), [3, 10])).toEqual([blob(5, 20), -1])
    expect(await fold(7, 6, blob(6, 25), [5, 19])).toEqual([blob(5, 20), -1])
    expect(await t.redis.hgetBuffer(s, String(DAY))).toEqual(blob(5, 20))
    // Both directions in one call (one slot: the account's hash tag and the fence picked for it).
    expect(await fold(7, 6, blob(6, 25), [5, 20], blob(6, 9))).toEqual([1, 1])
    expect(await t.redis.hgetBuffer(rk, String(DAY))).toEqual(blob(6, 9))
  })

  it('fenced-cursor: moves forward only, refuses a stale fence', async () => {
    const f = t.schema.rollupFence('b2')
    await t.redis.set(f, '3')
    const cursor = t.schema.rollupCursor
    expect(await r.rollupCursor(f, cursor, 3, 100)).toBe(1)
    expect(await r.rollupCursor(f, cursor, 3, 99)).toBe(0)
    expect(await r.rollupCursor(f, cursor, 3, 100)).toBe(0)
    expect(await r.rollupCursor(f, cursor, 3, 101)).toBe(1)
    await expect(r.rollupCursor(f, cursor, 2, 102)).rejects.toThrow(/^FENCED/)
    expect(await t.redis.get(cursor)).toBe('101')
  })

  it('fenced-free: removes a key or a set member, refuses a stale fence', async () => {
    const f = t.schema.rollupFence('c3')
    await t.redis.set(f, '4')
    const shard = t.schema.hourAuthors(100, 0)
    await t.redis.sadd(shard, '1', '2')
    await t.redis.sadd(t.schema.indexHours, '100', '101')
    await expect(r.rollupFree(f, shard, 3)).rejects.toThrow(/^FENCED/)
    expect(await t.redis.exists(shard)).toBe(1)
    expect(await r.rollupFree(f, shard, 4)).toBe(1)
    expect(await t.redis.exists(shard)).toBe(0)
    expect(await r.rollupFree(f, t.schema.indexHours, 4, '100')).toBe(1)
    expect(await t.redis.smembers(t.schema.indexHours)).toEqual(['101'])
  })

  it('fenced-hset and fenced-hdel: write and delete DID table entries, refuse a stale fence', async () => {
    const f = t.schema.rollupFence('d4')
    await t.redis.set(f, '9')
    const table = t.schema.didTable(7)
    const [a, b] = [Buffer.from('aaaaaaaa'), Buffer.from('bbbbbbbb')]
    await expect(r.rollupHset(f, table, 8, a, 'x')).rejects.toThrow(/^FENCED/)
    expect(await r.rollupHset(f, table, 9, a, 'x', b, 'y')).toBe(2)
    await expect(r.rollupHdel(f, table, 8, a)).rejects.toThrow(/^FENCED/)
    expect(await r.rollupHdel(f, table, 9, a, Buffer.from('cccccccc'))).toBe(1)
    expect(await t.redis.hkeys(table)).toEqual(['bbbbbbbb'])
  })

  it('fenced-hdel-equal: deletes an entry only while it holds the value read, refuses a stale fence', async () => {
    const f = t.schema.pruneFence('d5')
    await t.redis.set(f, '4')
    const table = t.schema.didTable(8)
    const [a, b, c] = [Buffer.from('aaaaaaaa'), Buffer.from('bbbbbbbb'), Buffer.from('cccccccc')]
    await t.redis.hset(table, a, 'bad', b, 'fixed since')
    await expect(r.fencedHdelEqual(f, table, 3, a, 'bad')).rejects.toThrow(/^FENCED/)
    // a: still the bad value read, deleted; b: rewritten meanwhile, kept; c: absent.
    expect(await r.fencedHdelEqual(f, table, 4, a, 'bad', b, 'bad', c, 'bad')).toBe(1)
    expect(await t.redis.hgetall(table)).toEqual({ bbbbbbbb: 'fixed since' })
  })

  it('fenced-rewrite: writes over the very blob it was computed from only, keeps the expiry, refuses a stale fence', async () => {
    const f = t.schema.rollupFence('e5')
    await t.redis.set(f, '3')
    const s = t.schema.longTerm(ALICE, 's')
    await t.redis.hset(s, String(DAY), blob(4, 19), String(DAY - 1), blob(24, 28))
    await t.redis.pexpireat(s, EXPIRE)
    const rewrite = (fence: number, ...args: (string | number | Buffer)[]) =>
      r.forgetRewriteBuffer(f, s, fence, ...args)
    await expect(rewrite(2, String(DAY), blob(4, 19), blob(4, 10))).rejects.toThrow(/^FENCED/)
    // Computed from the blobs as they are: written; a field gone meanwhile: nothing to do.
    expect(
      await rewrite(
        3,
        String(DAY),
        blob(4, 19),
        blob(4, 10),
        String(DAY - 1),
        blob(24, 28),
        blob(24, 1),
      ),
    ).toEqual([1, 1])
    expect(await rewrite(3, String(DAY - 5), blob(4, 19), blob(4, 10))).toEqual([0])
    expect(await t.redis.hgetBuffer(s, String(DAY))).toEqual(blob(4, 10))
    expect(await t.redis.hgetBuffer(s, String(DAY - 1))).toEqual(blob(24, 1))
    expect(await t.redis.pexpiretime(s)).toBe(EXPIRE)
    // A fold raised the mark (or a removal shortened the blob) since it was read: the current blob comes
    // back, and the field keeps it.
    await t.redis.hset(s, String(DAY), blob(5, 19))
    expect(await rewrite(3, String(DAY), blob(4, 19), blob(4, 10))).toEqual([blob(5, 19)])
    expect(await rewrite(3, String(DAY), blob(5, 20), blob(5, 10))).toEqual([blob(5, 19)])
    expect(await t.redis.hgetBuffer(s, String(DAY))).toEqual(blob(5, 19))
    // A backfill rewrote its blob since (mark 0 both times, same length, another count): refused too.
    const bs = t.schema.longTerm(ALICE, 'bs')
    const read = blob(0, 19)
    const rewritten = Buffer.from(read)
    rewritten[1] = 0x42
    await t.redis.hset(bs, String(DAY), rewritten)
    expect(await r.forgetRewriteBuffer(f, bs, 3, String(DAY), read, blob(0, 10))).toEqual([
      rewritten,
    ])
    expect(await t.redis.hgetBuffer(bs, String(DAY))).toEqual(rewritten)
  })

  it('fenced-dequeue: removes a queued account only at the score read, refuses a stale fence', async () => {
    const f = t.schema.rollupFence('f6')
    await t.redis.set(f, '5')
    const q = t.schema.forgetQueue
    // scores are the ms of a purge: the first one, then a later one (any times do; taken from the clock)
    const first = Date.now() - 1000
    const later = String(first + 876)
    await t.redis.zadd(q, first, ALICE)
    const [, score] = await t.redis.zrange(q, 0, 0, 'WITHSCORES')
    await expect(r.forgetDequeue(f, q, 4, ALICE, score as string)).rejects.toThrow(/^FENCED/)
    // A purge came meanwhile (a new score): it stays queued.
    await t.redis.zadd(q, later, ALICE)
    expect(await r.forgetDequeue(f, q, 5, ALICE, score as string)).toBe(0)
    expect(await t.redis.zcard(q)).toBe(1)
    expect(await r.forgetDequeue(f, q, 5, ALICE, later)).toBe(1)
    expect(await t.redis.zcard(q)).toBe(0)
    expect(await r.forgetDequeue(f, q, 5, ALICE, later)).toBe(0)
  })

  it('delete-if-equal: deletes a handle resolution only while it names the account', async () => {
    const key = t.schema.handleDid('alice.example.com')
    await t.redis.set(key, 'did:plc:someoneelse')
    expect(await r.deleteIfEqual(key, ALICE)).toBe(0)
    expect(await t.redis.exists(key)).toBe(1)
    await t.redis.set(key, ALICE)
    expect(await r.deleteIfEqual(key, ALICE)).toBe(1)
    expect(await t.redis.exists(key)).toBe(0)
  })

  it('an error raised inside a script names its file and line', async () => {
    const fence = t.schema.rollupFence('e5')
    const hash = `${t.schema.rollupFence('e5')}:not-a-hash`
    await t.redis.set(fence, '7')
    await t.redis.set(hash, 'a string')
    const pipe = r.pipeline() as RollupPipeline
    pipe.rollupHset(fence, hash, 7, 'field', 'value')
    const err = await execFenced(pipe).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Error)
    // the HSET of fenced-hset.lua met a string: WRONGTYPE, and the file's line 10 is that HSET
    const m = /\(at (services\/scheduler\/lua\/fenced-hset\.lua):(\d+)\)$/.exec(
      (err as Error).message,
    )
    expect((err as Error).message).toMatch(/WRONGTYPE/)
    expect(m?.[1]).toBe('services/scheduler/lua/fenced-hset.lua')
    const lines = luaScript('fenced-hset').split('\n')
    expect(lines[Number(m?.[2]) - 1]).toContain("redis.call('HSET'")
  })

  it('lock-extend, lock-release: only the holder extends or releases; errors name the file', async () => {
    const key = t.schema.schedulerLock('stats')
    const lock = await acquireLock(t.redis, key, 10_000)
    expect(lock).not.toBeNull()
    await t.redis.pexpire(key, 50)
    await lock?.extend()
    expect(await t.redis.pttl(key)).toBeGreaterThan(5_000)
    // another holder took it over: the first can neither extend nor release it
    await t.redis.set(key, 'someone else')
    await expect(lock?.extend()).rejects.toBeInstanceOf(LockLostError)
    await lock?.release()
    expect(await t.redis.get(key)).toBe('someone else')
    // a lock key of the wrong type: the GET inside lock-release.lua fails, and says where
    await t.redis.del(key)
    await t.redis.hset(key, 'f', 'v')
    const err = (await lock?.release().catch((e: unknown) => e)) as Error
    expect(err.message).toMatch(/WRONGTYPE/)
    expect(err.message).toMatch(/\(at services\/scheduler\/lua\/lock-release\.lua:5\)$/)
  })
})
