import { type InteractionKind, LIKE, POST, parseAtUri, REPOST } from '@circles/core'
import { resolveIds } from '../did-table.js'
import {
  CODE_DELETED,
  CODE_INBOUND,
  CODE_KINDS,
  CODE_UNKNOWN,
  forEachRecord,
  rkeyBytes,
  spillHour,
  WINDOW_HOURS,
} from '../layout.js'
import type { ReaderContext } from './context.js'

export interface InteractionInfo {
  author: string
  subject: string
  kinds: InteractionKind[]
  /** Event time in ms (stored at second resolution). */
  time: number
  chars: number
}

/** The interaction of a like, repost or post URI in the window, from its author's logs; null if none. */
export async function findInteraction(
  { redis, schema, now, cache }: ReaderContext,
  uri: string,
): Promise<InteractionInfo | null> {
  const at = parseAtUri(uri)
  if (!at) return null
  const type =
    at.collection === LIKE ? 0 : at.collection === REPOST ? 1 : at.collection === POST ? 2 : -1
  if (type < 0) return null
  const hour = spillHour(at.rkey)
  const keys = [schema.accountLog(at.did)]
  if (hour !== null) keys.push(schema.accountHourLog(at.did, hour))
  const logs = await redis.mgetBuffer(...keys)
  const rk8 = rkeyBytes(at.rkey)
  const minSec = Math.floor(now() / 1000) - WINDOW_HOURS * 3600
  const found: { code: number; partner: string; sec: number; chars: number }[] = []
  for (const log of logs) {
    forEachRecord(log, (buf, off) => {
      const code = buf[off + 8] as number
      if (code & (CODE_DELETED | CODE_UNKNOWN | CODE_INBOUND)) return
      if (Math.min(code & 3, 2) !== type || rk8.compare(buf, off, off + 8) !== 0) return
      const sec = buf.readUInt32BE(off + 17)
      if (sec < minSec) return
      found.push({
        code,
        partner: buf.toString('latin1', off + 9, off + 17),
        sec,
        chars: buf.readUInt16BE(off + 21),
      })
    })
  }
  if (found.length === 0) return null
  found.sort((x, y) => x.code - y.code)
  const first = found[0] as (typeof found)[number]
  const dids = await resolveIds(redis, schema, [first.partner], cache)
  const subject = dids.get(first.partner)
  if (subject === undefined) return null
  return {
    author: at.did,
    subject,
    kinds: found
      .filter((f) => f.partner === first.partner)
      .map((f) => CODE_KINDS[f.code & 3] as InteractionKind),
    time: first.sec * 1000,
    chars: first.chars,
  }
}
