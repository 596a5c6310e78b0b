import { interpretOp, type StreamEvent, toAccountEvent, toIdentityEvent } from '@circles/core'
import { Firehose } from '@skyware/firehose'
import type { CorpusFrame } from './corpus.js'

interface StockMessage {
  $type?: string
  seq?: number
  repo?: string
  did?: string
  handle?: unknown
  active?: unknown
  status?: unknown
  time?: string
  ops?: { action: string; path: string; record?: unknown }[]
}

// parseMessage does not touch the instance: it is the stock decoder, minus the websocket.
const parseMessage = (
  Firehose.prototype as unknown as { parseMessage: (data: unknown) => Promise<StockMessage> }
).parseMessage

export interface ReferenceResult {
  events: StreamEvent[]
  /** Frames that were `#commit`s. */
  commits: number
  /** Frames the stock decoder threw on (error frames included). */
  errors: number
  lastSeq: number
}

/**
 * The events a corpus must yield, derived the slow, obviously-right way: the stock
 * `@skyware/firehose` decoder (every block of every CAR) and `@circles/core`'s `interpretOp`.
 * Tests compare a service's output against this.
 */
export async function referenceEvents(frames: Iterable<CorpusFrame>): Promise<ReferenceResult> {
  const out: ReferenceResult = { events: [], commits: 0, errors: 0, lastSeq: 0 }
  for (const frame of frames) {
    let msg: StockMessage
    try {
      msg = await parseMessage(frame.data)
    } catch {
      out.errors++
      continue
    }
    if (typeof msg.seq === 'number') out.lastSeq = Math.max(out.lastSeq, msg.seq)
    const time = msg.time ? Date.parse(msg.time) : Number.NaN
    switch (msg.$type) {
      case 'com.atproto.sync.subscribeRepos#commit': {
        out.commits++
        for (const op of msg.ops ?? []) {
          const slash = op.path.indexOf('/')
          const res = interpretOp({
            repo: msg.repo ?? '',
            action: op.action,
            collection: op.path.slice(0, slash),
            rkey: op.path.slice(slash + 1),
            record: op.record,
            commitTime: time,
          })
          out.events.push(...res.events)
        }
        break
      }
      case 'com.atproto.sync.subscribeRepos#identity': {
        const e = toIdentityEvent(msg.did, msg.handle, time)
        if (e) out.events.push(e)
        break
      }
      case 'com.atproto.sync.subscribeRepos#account': {
        const e = toAccountEvent(msg.did, msg.active, msg.status, time)
        if (e) out.events.push(e)
        break
      }
    }
  }
  return out
}
