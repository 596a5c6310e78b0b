import type { Redis } from 'ioredis'

// Everything under a key prefix as comparable text, to prove two Redis deployments (one node, a cluster)
// hold the same data: each key's type and value, collections sorted, expiry left out (it depends on when
// each was written). Reads every node it is given: on a cluster, every primary.

/** key -> `type:value`, for every key under `prefix` on `nodes`, in key order. */
export async function dumpByPrefix(
  nodes: readonly Redis[],
  prefix: string,
): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const node of nodes) {
    let cursor = '0'
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      for (const key of keys) out.set(key.slice(prefix.length), await keyValue(node, key))
    } while (cursor !== '0')
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

async function keyValue(node: Redis, key: string): Promise<string> {
  const type = await node.type(key)
  const hex = (b: Buffer) => b.toString('hex')
  switch (type) {
    case 'string':
      return `string:${hex((await node.getBuffer(key)) as Buffer)}`
    case 'set':
      return `set:${(await node.smembersBuffer(key)).map(hex).sort().join(',')}`
    case 'hash': {
      const flat = await node.hgetallBuffer(key)
      const pairs = Object.entries(flat).map(
        ([f, v]) => `${Buffer.from(f).toString('hex')}=${hex(v)}`,
      )
      return `hash:${pairs.sort().join(',')}`
    }
    case 'zset':
      return `zset:${(await node.zrange(key, 0, -1, 'WITHSCORES')).join(',')}`
    case 'list':
      return `list:${(await node.lrangeBuffer(key, 0, -1)).map(hex).join(',')}`
    default:
      return type
  }
}
