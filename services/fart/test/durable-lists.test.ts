import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { changeOptOuts } from '@circles/interaction-index'
import { createLogger } from '@circles/logging'
import { loseByPrefix } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createDurableLists, readListsFile } from '../src/durable-lists.js'
import { ADMIN_TOKEN, did, type Harness, startHarness } from './helpers.js'

// A Redis that comes back empty loses the admin lists with everything else: opted-out accounts must not
// reappear. The API mirrors the lists into a file and refills Redis from it.

describe('the admin lists across a Redis that lost its data', () => {
  let h: Harness
  let dir: string
  let file: string
  beforeEach(async () => {
    h = await startHarness()
    dir = mkdtempSync(join(tmpdir(), 'circles-lists-'))
    file = join(dir, 'api-lists.json')
  })
  afterEach(async () => {
    await h.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('mirrors the lists while Redis has them and puts them back when it lost them', async () => {
    const { t } = h
    const lists = createDurableLists(t.redis, t.schema, file, createLogger('test'))
    expect(await lists.sync()).toBe('marked')
    const [A, B, C] = [did(1), did(2), did(3)]
    // A by an admin, B by a block of the service account (as the indexer records them)
    await changeOptOuts(t.redis, t.schema, [
      { did: A, reason: 'admin', on: true },
      { did: B, reason: 'block', on: true, rkey: '3lbbbbbbbbb22' },
    ])
    await t.redis.sadd(t.schema.tracked, C)
    expect(await lists.sync()).toBe('mirrored')
    const saved = { admin: [A], blocks: { [B]: '3lbbbbbbbbb22' }, labels: [] }
    expect(readListsFile(file)).toEqual({ optOuts: [A, B], tracked: [C], ...saved })

    await loseByPrefix(t.redis, t.prefix)
    // something written after the loss and before the refill stays
    await t.redis.sadd(t.schema.tracked, B)
    expect(await lists.sync()).toBe('reseeded')
    expect((await t.redis.smembers(t.schema.optOuts)).sort()).toEqual([A, B])
    expect((await t.redis.smembers(t.schema.tracked)).sort()).toEqual([B, C])
    // cached circles made while the list was missing are retired, as after an admin change
    expect(Number(await t.redis.get(t.schema.optOutsVersion))).toBe(1)
    expect(readListsFile(file)).toEqual({ optOuts: [A, B], tracked: [B, C], ...saved })
    // The reasons came back too: B leaves by deleting its block, A's admin opt-out holds.
    const back = await changeOptOuts(t.redis, t.schema, [
      { did: B, reason: 'block', on: false, rkey: '3lbbbbbbbbb22' },
      { did: A, reason: 'label', on: false },
    ])
    expect(back.map((o) => o.optedOut)).toEqual([false, true])
    await t.redis.sadd(t.schema.optOuts, B)
    expect(await lists.sync()).toBe('mirrored')
    // a removal reaches the file with the next sync
    await t.redis.srem(t.schema.optOuts, B)
    await lists.sync()
    expect(JSON.parse(readFileSync(file, 'utf8')).optOuts).toEqual([A])
  })

  it('an opted-out account stays out of the API after Redis lost its data', async () => {
    const { t, app } = h
    const A = did(11)
    const B = did(12)
    for (const [d, handle] of [
      [A, 'a.test'],
      [B, 'b.test'],
    ] as const) {
      h.appview.profiles.set(d, { did: d, handle })
    }
    await h.link(B, A, { like: 3 })
    const lists = createDurableLists(t.redis, t.schema, file, createLogger('test'))
    await lists.sync()
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
    expect(
      (await app.inject({ method: 'PUT', url: `/admin/opt-outs/${A}`, headers: auth })).statusCode,
    ).toBeLessThan(300)
    await lists.sync()

    await loseByPrefix(t.redis, t.prefix)
    await h.link(B, A, { like: 3 }) // the index fills again from the stream
    await lists.sync()
    const res = await app.inject({ url: `/v1/circles/${A}` })
    expect({ status: res.statusCode, error: res.json().error }).toEqual({
      status: 403,
      error: 'OptedOut',
    })
    const circle = await app.inject({ url: `/v1/circles/${B}` })
    expect(circle.statusCode).toBe(200)
    expect(circle.body).not.toContain(A)
  })
})
