// What Redis says about a stream's consumer groups and their consumers (XINFO GROUPS, XINFO CONSUMERS), as
// typed records. The firehose's lag check, the indexer's metrics and consumer pruning, the API's /metrics,
// the scheduler's stats, the doctor and the tests all ask it about the indexer's group; each used to pick
// the flat reply apart by itself.

/** One consumer group of a stream, as XINFO GROUPS reports it. */
export interface StreamGroup {
  name: string
  consumers: number
  /** Entries delivered to the group's consumers and not acknowledged yet. */
  pending: number
  lastDeliveredId: string
  /** Entries delivered to the group so far (Redis >= 7); null when Redis cannot tell, or before 7. */
  entriesRead: number | null
  /**
   * Entries not yet delivered to the group (Redis >= 7); null when Redis cannot tell (after deletions or
   * trimming inside the unread range), or before 7.
   */
  lag: number | null
}

/** One consumer of a group, as XINFO CONSUMERS reports it. */
export interface StreamConsumer {
  name: string
  /** Entries delivered to this consumer and not acknowledged yet. */
  pending: number
  /** Milliseconds since its last attempted interaction (read, claim). */
  idle: number
}

/** The one call `readGroups` makes (ioredis's Redis and Cluster have it). */
export interface XinfoClient {
  xinfo(subcommand: 'GROUPS', key: string): Promise<unknown>
}

function count(value: unknown): number | null {
  if (value === null || value === undefined || value === '') return null
  const n = Number(value)
  return Number.isFinite(n) ? n : null
}

/**
 * A flat `[name, value, name, value, ...]` reply (an XINFO record, a stream entry's fields) as a map;
 * anything else as an empty one.
 */
export function fieldMap(flat: unknown): Map<string, unknown> {
  const map = new Map<string, unknown>()
  if (!Array.isArray(flat)) return map
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(String(flat[i]), flat[i + 1])
  return map
}

/** An XINFO GROUPS reply (an array of flat field lists, strings or buffers) as records. */
export function parseGroups(reply: unknown): StreamGroup[] {
  if (!Array.isArray(reply)) return []
  return reply.map((flat) => {
    const f = fieldMap(flat)
    return {
      name: String(f.get('name') ?? ''),
      consumers: count(f.get('consumers')) ?? 0,
      pending: count(f.get('pending')) ?? 0,
      lastDeliveredId: String(f.get('last-delivered-id') ?? '0-0'),
      entriesRead: count(f.get('entries-read')),
      lag: count(f.get('lag')),
    }
  })
}

/** An XINFO CONSUMERS reply as records. */
export function parseConsumers(reply: unknown): StreamConsumer[] {
  if (!Array.isArray(reply)) return []
  return reply.map((flat) => {
    const f = fieldMap(flat)
    return {
      name: String(f.get('name') ?? ''),
      pending: count(f.get('pending')) ?? 0,
      idle: count(f.get('idle')) ?? 0,
    }
  })
}

/** The groups of `stream`; none when the stream does not exist (XINFO answers "no such key"). */
export async function readGroups(redis: XinfoClient, stream: string): Promise<StreamGroup[]> {
  try {
    return parseGroups(await redis.xinfo('GROUPS', stream))
  } catch (err) {
    if (err instanceof Error && /no such key/i.test(err.message)) return []
    throw err
  }
}

/** One group of `stream`, or undefined when it (or the stream) does not exist. */
export async function groupInfo(
  redis: XinfoClient,
  stream: string,
  group: string,
): Promise<StreamGroup | undefined> {
  return (await readGroups(redis, stream)).find((g) => g.name === group)
}
