import { encodeBulks, Frame, type FrameSender, withLuaSource } from '@circles/redis-wire'
import { RECORD_SIZE } from '../layout.js'
import { INDEX_LIBRARY_CODE, isLibraryMissing } from '../scripts.js'
import type { WriterContext } from './context.js'
import { NO_REF, OP_SIZE, type Phase } from './ops.js'
import { writeCalls } from './sections.js'

/** A command sent beside a phase's script calls (DID table, hour index, stale caches). */
export type SideCommand = (string | Buffer | number)[]
/** An operation's outcome: 1 applied, 0 already so, -1 refused; for deletes, the records they marked. */
export type OnResult = (ref: number, code: number, deleted: Buffer[] | null) => void

/**
 * Sends a phase as one pipeline (one script call per slot) and returns its outcome; `onResult(ref, code,
 * deleted)` gets each operation's outcome (1 applied, 0 already so, -1 refused) and, for deletes, the
 * records they marked. The pipeline is written to the connection before this returns its promise, so
 * phases sent one after the other run in Redis in that order. With `onEpoch`, the DID table epoch is read
 * after the script calls, in the same pipeline, and passed to it ('0' when unset).
 */
export function sendPhase(
  ctx: WriterContext,
  phase: Phase,
  via: FrameSender,
  nowMs: number,
  side: SideCommand[] = [],
  onResult?: OnResult,
  onEpoch?: (epoch: string) => void,
): Promise<void> {
  if (phase.accounts.length === 0 && side.length === 0) return Promise.resolve()
  // room for every section's keys (main log, purge mark, a spill log) and operations: no regrowth
  const frame = new Frame(4096 + phase.accounts.length * 320 + phase.opCount() * (OP_SIZE + 1))
  if (ctx.loadLibrary) {
    frame.call('FUNCTION', 'LOAD', 'REPLACE', INDEX_LIBRARY_CODE)
    ctx.loadLibrary = false
  }
  for (const command of side) frame.call(...command)
  const before = frame.commands
  const args = encodeBulks(
    String(ctx.cursor.horizon(nowMs)),
    String(ctx.mainLogCap),
    String(ctx.keep),
  )
  const refs: number[] = []
  const ends: number[] = []
  writeCalls(phase, ctx.schema, frame, args, ctx.appendSections, refs, ends)
  // On a cluster the epoch lives on another node than most appends: read it after their replies.
  const epochInFrame = onEpoch !== undefined && !via.routed
  if (epochInFrame) frame.call('GET', ctx.schema.didTableEpoch)
  // The accounts keep only the phase being built: a phase sent must not stay reachable from them.
  phase.recycle()
  const sent = via.send(frame).then((results) => {
    for (const r of results) {
      if (!(r instanceof Error)) continue
      if (isLibraryMissing(r)) ctx.loadLibrary = true
      throw withLuaSource(r)
    }
    if (epochInFrame) onEpoch(String(results[before + ends.length] ?? '0'))
    if (onResult) readResults(results, before, refs, ends, onResult)
  })
  return onEpoch && !epochInFrame ? sent.then(() => readEpoch(ctx, via, onEpoch)) : sent
}

/** The DID table epoch, read on its own after a phase's replies (see table-memo.ts for why after). */
async function readEpoch(ctx: WriterContext, via: FrameSender, onEpoch: (epoch: string) => void) {
  const frame = new Frame(128)
  frame.call('GET', ctx.schema.didTableEpoch)
  const [epoch] = await via.send(frame)
  if (epoch instanceof Error) throw epoch
  onEpoch(String(epoch ?? '0'))
}

/** Hands each operation's outcome in the replies of a phase's script calls (from `before` on) to `onResult`. */
function readResults(
  results: unknown[],
  before: number,
  refs: readonly number[],
  ends: readonly number[],
  onResult: OnResult,
): void {
  let start = 0
  ends.forEach((end, i) => {
    const [codes, deleted] = results[before + i] as [Buffer, Buffer]
    let marked: Map<number, Buffer[]> | null = null
    for (let off = 0; off + 4 + RECORD_SIZE <= deleted.length; off += 4 + RECORD_SIZE) {
      marked ??= new Map()
      const j = deleted.readUInt32BE(off)
      const list = marked.get(j) ?? []
      list.push(deleted.subarray(off + 4, off + 4 + RECORD_SIZE))
      marked.set(j, list)
    }
    for (let j = 0; j < end - start; j++) {
      const ref = refs[start + j] as number
      if (ref === NO_REF) continue
      const code = codes[j]
      onResult(ref, code === 0x31 ? 1 : code === 0x30 ? 0 : -1, marked?.get(j) ?? null)
    }
    start = end
  })
}
