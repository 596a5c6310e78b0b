import { dropNames, foldName, NAME_MAX_CHARS, searchNames } from '@circles/bsky-client'
import { isValidDid } from '@circles/core'
import { hiddenAccounts } from '@circles/interaction-index'
import type { AppContext } from './context.js'
import { ParamError } from './params.js'

// Accounts whose handle or display name starts with what a visitor typed, for the page's suggestions: read
// from the name index beside the profile cache (bsky-client profile-names.ts), never from the AppView, so a
// keystroke costs two range reads and one round of profile and hidden-account checks.

export interface Suggestion {
  did: string
  handle: string
  displayName?: string
  avatar?: string
}

/** Letters, marks, digits, space and the punctuation of handles and DIDs. */
const PREFIX_RE = /^[\p{L}\p{M}\p{N} ._:-]+$/u

/** The folded prefix a query asks for; a ParamError (400) when it cannot be one. */
export function suggestPrefix(q: string): string {
  const raw = q.trim().replace(/^@/, '')
  if (!PREFIX_RE.test(raw)) {
    throw new ParamError(
      `q must be 1 to ${NAME_MAX_CHARS} letters, digits, spaces or . _ : - (a leading @ is ignored)`,
    )
  }
  return foldName(raw)
}

/**
 * Up to `limit` visible accounts matching `q`: handles first, then display names, each account once. A
 * member whose account has no cached profile any more, or whose profile now says another handle or name, is
 * skipped and dropped from the index; an opted-out, deleted or queued-to-be-forgotten account is skipped (the
 * scheduler's forget step removes its members).
 */
export async function suggestActors(
  ctx: Pick<AppContext, 'redis' | 'schema' | 'profiles'> & { onSkipped: (err: unknown) => void },
  q: string,
  limit: number,
): Promise<Suggestion[]> {
  const prefix = suggestPrefix(q)
  // Read more than asked: some candidates fall to the checks below.
  const hits = await searchNames(ctx.redis, ctx.schema, prefix, limit * 3)
  if (hits.length === 0) return []
  // Members are written for valid DIDs only; checked again before any becomes a key (a bad one is stale).
  const dids = [...new Set(hits.map((h) => h.did))].filter((d) => isValidDid(d))
  const [hidden, lookup] = await Promise.all([
    hiddenAccounts(ctx.redis, ctx.schema, dids),
    ctx.profiles.peek(dids),
  ])
  const out = new Map<string, Suggestion>()
  const stale: string[] = []
  for (const h of hits) {
    const p = lookup.profiles.get(h.did)
    const current =
      p !== undefined &&
      (h.by === 'handle' ? p.handle.toLowerCase() : foldName(p.displayName ?? '')) === h.value
    if (!current) stale.push(h.member)
    if (!current || hidden.has(h.did) || out.has(h.did) || out.size >= limit) continue
    out.set(h.did, { did: h.did, handle: p.handle, displayName: p.displayName, avatar: p.avatar })
  }
  // A cleanup, not the answer: a Redis that refuses it costs the next request the same skip.
  if (stale.length > 0) {
    await dropNames(ctx.redis, ctx.schema, stale).catch(ctx.onSkipped)
  }
  return [...out.values()]
}
