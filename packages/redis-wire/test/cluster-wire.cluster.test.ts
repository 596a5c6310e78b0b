import { haveRedisCli, type PrivateRedisCluster, startRedisCluster } from '@circles/testkit'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClusterWire, connectRedis, Frame, keySlot, wireFor } from '../src/index.js'

// ClusterWire against a real 3-primary cluster whose slots move under it: a MOVED reply (slot moved after
// the map was read) and an ASK reply (slot being migrated) are followed, and the replies keep frame order.

describe.runIf(haveRedisCli('the ClusterWire test'))('ClusterWire', () => {
  let cluster: PrivateRedisCluster
  let redis: Redis
  let wire: ClusterWire
  beforeAll(async () => {
    cluster = await startRedisCluster({ replicas: 0 })
    redis = connectRedis(cluster.target)
    wire = wireFor(redis) as ClusterWire
  })
  afterAll(async () => {
    await wire?.close()
    redis?.disconnect()
    await cluster?.stop()
  })

  /** The primary that owns `slot` and another one, with their node ids. */
  async function owners(slot: number) {
    const ranges = (await on(cluster.nodes[0]?.port as number, 'CLUSTER', 'SLOTS')) as [
      number,
      number,
      [string, number, string],
    ][]
    const node = ([, , n]: (typeof ranges)[number]) => ({ port: n[1], id: n[2] })
    const from = node(ranges.find(([a, b]) => slot >= a && slot <= b) as (typeof ranges)[number])
    const to = node(ranges.find((r) => node(r).port !== from.port) as (typeof ranges)[number])
    return { from, to }
  }

  async function on(port: number, ...args: (string | number)[]) {
    const r = new Redis(port, '127.0.0.1')
    try {
      return await r.call(String(args[0]), ...args.slice(1).map(String))
    } finally {
      r.disconnect()
    }
  }

  it('sends each command to its primary and answers in frame order', async () => {
    const f = new Frame(256)
    const keys = Array.from({ length: 20 }, (_, i) => `cw-order:${i}`)
    for (const k of keys) f.call('SET', k, k)
    for (const k of keys) f.call('GET', k)
    const replies = (await wire.send(f)).map(String)
    expect(replies.slice(20)).toEqual(keys)
  })

  it('follows MOVED after a slot moved, and ASK while a slot migrates', async () => {
    const movedKey = 'cw-moved:{a}'
    const slot = keySlot(movedKey)
    const first = new Frame(64)
    first.call('GET', movedKey)
    await wire.send(first) // the map is read now
    const { from, to } = await owners(slot)
    // an empty slot may be handed over at once: the wire's map is now wrong for it
    for (const n of cluster.nodes) await on(n.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', to.id)
    const moved = new Frame(64)
    moved.call('SET', movedKey, 'v')
    moved.call('GET', movedKey)
    expect((await wire.send(moved)).map(String)).toEqual(['OK', 'v'])
    expect(String(await on(to.port, 'GET', movedKey))).toBe('v')

    const askKey = 'cw-ask:{b}'
    const askSlot = keySlot(askKey)
    const ask = await owners(askSlot)
    await on(ask.to.port, 'CLUSTER', 'SETSLOT', askSlot, 'IMPORTING', ask.from.id)
    await on(ask.from.port, 'CLUSTER', 'SETSLOT', askSlot, 'MIGRATING', ask.to.id)
    const asked = new Frame(64)
    asked.call('SET', askKey, 'w')
    // a key not on the source during a migration goes to the target, behind ASKING
    expect((await wire.send(asked)).map(String)).toEqual(['OK'])
    const onTarget = new Redis(ask.to.port, '127.0.0.1')
    await onTarget.call('ASKING')
    expect(await onTarget.get(askKey)).toBe('w')
    onTarget.disconnect()
    expect(from.port).not.toBe(to.port)
  })
})
