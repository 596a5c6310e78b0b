import { Firehose } from '@skyware/firehose'
import {
  accountResult,
  addOp,
  type DecodeOptions,
  emptyResult,
  type FrameResult,
  identityResult,
  infoResult,
  malformed,
  NO_OPTIONS,
  seqOf,
  timeOf,
} from '../src/frame-result.js'

// The reference path: the stock `@skyware/firehose` parser (every block of the CAR decoded) mapped to
// events with the same `addOp` as the fast path. Used by the equivalence test and as the benchmark's
// baseline decoder; the service itself never uses it.

interface StockMessage {
  $type: string
  [key: string]: unknown
}

// `parseMessage` is private in the typings but uses no instance state, so it can run on its own.
const parseMessage = (
  Firehose.prototype as unknown as { parseMessage(data: unknown): Promise<StockMessage> }
).parseMessage

const PREFIX = 'com.atproto.sync.subscribeRepos'

/** Decodes one raw frame exactly as `@skyware/firehose` 0.5.2 does, then maps it to events. */
export async function decodeFrameStock(
  frame: Uint8Array,
  now: number,
  opts: DecodeOptions = NO_OPTIONS,
): Promise<FrameResult> {
  let message: StockMessage
  try {
    message = await parseMessage.call(null, frame)
  } catch {
    // Skyware throws on error frames too ("Invalid header received"): it cannot tell them apart.
    return malformed()
  }
  switch (message.$type) {
    case `${PREFIX}#commit`: {
      const result = emptyResult('commit', seqOf(message.seq))
      const commitTime = timeOf(message.time, now)
      const ops = Array.isArray(message.ops) ? (message.ops as Record<string, unknown>[]) : []
      for (const op of ops) {
        addOp(
          result,
          message.repo,
          commitTime,
          {
            action: op.action,
            path: op.path,
            record: op.record,
            cid: opts.botDid ? linkOf(op.cid) : undefined,
          },
          opts,
        )
      }
      return result
    }
    case `${PREFIX}#identity`:
      return identityResult(message, now)
    case `${PREFIX}#account`:
      return accountResult(message, now)
    case `${PREFIX}#sync`:
      return emptyResult('sync', seqOf(message.seq))
    case `${PREFIX}#info`:
      return infoResult(message)
    default:
      return emptyResult('unknown', seqOf(message.seq))
  }
}

/** The CID as the stock client gives it (its `$link` text). */
function linkOf(cid: unknown): string | undefined {
  return typeof cid === 'string' ? cid : undefined
}
