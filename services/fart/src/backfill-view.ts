import { type BackfillState, parseBackfillState } from '@circles/backfill'

// What a circle answer shows of its account's backfill (packages/backfill), and how a cached circle knows it
// was made before the backfill ended. The state is not in the cached body: it moves on its own (progress), so
// it is appended to the bytes at send time, and the ETag says which state went with them.

/** An account's backfill state, and the mark a circle made under it keeps in its cache entry. */
export interface BackfillView {
  state: BackfillState
  /**
   * `p` (pending: never backfilled, queued, running or failed) or `d<at>` (done, at that time). A circle
   * whose mark differs from a current `d…` was made before the backfill that just ended: it is stale.
   */
  mark: string
}

export const MARK_PATTERN = /^(?:p|d\d{0,16})$/

export const NO_BACKFILL: BackfillView = { state: { state: 'none', progress: 0 }, mark: 'p' }

/** The view of the account's backfill hash (`schema.backfillAccount`, HGETALL's reply). */
export function backfillView(h: Record<string, string>): BackfillView {
  const state = parseBackfillState(h)
  if (state.state !== 'done') return { state, mark: 'p' }
  // A re-run (the admin route) ends at another time: circles made after the first run are stale again.
  const at = /^\d{1,16}$/.test(h.at ?? '') ? h.at : ''
  return { state, mark: `d${at}` }
}

/** A cached circle made under `entryMark` is not served while the account's backfill is at `current`. */
export function isStaleMark(entryMark: string, current: string): boolean {
  return current !== 'p' && entryMark !== current
}

/**
 * What distinguishes the answers of one cached body under different states, for the ETag: empty for `none`
 * (the body's own ETag: accounts nobody backfills answer as they did before backfills existed).
 */
export function backfillTag(state: BackfillState): string {
  switch (state.state) {
    case 'none':
      return ''
    case 'queued':
      return 'q'
    case 'running':
      return `r${Math.round(state.progress * 1000)}`
    case 'done':
      return 'd'
    default:
      return `f${(state.reason ?? '').replace(/[^A-Za-z0-9_-]/g, '').slice(0, 40)}`
  }
}

/** The ETag of a body sent with `state`: the cached body's, tagged (`"<sha1>.<tag>"`). */
export function etagWithBackfill(etag: string, state: BackfillState): string {
  const tag = backfillTag(state)
  return tag === '' ? etag : `${etag.slice(0, -1)}.${tag}"`
}

const CLOSE = 0x7d

/**
 * The cached circle with `backfill` added as its last member: the body is one JSON object, whose closing
 * brace closes the added member instead. Anything else (an error body) is returned as it is.
 */
export function withBackfill(body: Buffer, state: BackfillState): Buffer {
  if (body[body.length - 1] !== CLOSE || body.length < 2) return body
  const extra = Buffer.from(`${body.length > 2 ? ',' : ''}"backfill":${JSON.stringify(state)}}`)
  return Buffer.concat([body.subarray(0, body.length - 1), extra])
}
