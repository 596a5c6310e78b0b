import type { RejectReason, RepoOp } from './interaction.js'
import { isValidDid, isValidRkey } from './syntax.js'

// Self-service opt-out, read from the network itself: an account opts out by blocking the service's own
// account, or by carrying the `!no-unauthenticated` self-label on its profile (which asks apps to show its
// content to logged-in users only: a circle drawn for anyone is exactly that). Undoing either opts back in.

export const BLOCK = 'app.bsky.graph.block'
export const PROFILE = 'app.bsky.actor.profile'
/** The profile self-label read as an opt-out. */
export const NO_UNAUTHENTICATED = '!no-unauthenticated'

/**
 * A block that matters to opt-outs: a create is a block of the service's account; a delete is of any block
 * (the record is gone, so its subject is unknown: the indexer matches the rkey it kept at the create).
 */
export interface BlockEvent {
  type: 'block'
  action: 'create' | 'delete'
  author: string
  rkey: string
  time: number
}

/** A profile written or deleted: whether it now carries the `!no-unauthenticated` self-label. */
export interface LabelEvent {
  type: 'label'
  did: string
  on: boolean
  time: number
}

export type PrivacyEvent = BlockEvent | LabelEvent

export interface PrivacyResult {
  event: PrivacyEvent | null
  /** Set when the op was malformed; `event` is then null and nothing changes. */
  rejected?: RejectReason
}

const NONE: PrivacyResult = Object.freeze({ event: null }) as PrivacyResult

/** True for the collections whose ops can opt an account out or back in. */
export function isPrivacyCollection(collection: string): boolean {
  return collection === BLOCK || collection === PROFILE
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Whether a profile's `labels` carry the opt-out label; null when they are malformed. */
function hasOptOutLabel(labels: unknown): boolean | null {
  if (labels === undefined) return false
  if (!isObject(labels) || !Array.isArray(labels.values)) return null
  let on = false
  for (const v of labels.values) {
    if (!isObject(v) || typeof v.val !== 'string') return null
    if (v.val === NO_UNAUTHENTICATED) on = true
  }
  return on
}

/**
 * One commit op to the opt-out event it stands for, if any. Pure. `serviceDid` is the service's own
 * account (SERVICE_DID); without one, blocks mean nothing. Malformed records change nothing and say why.
 */
export function interpretPrivacyOp(op: RepoOp, serviceDid: string | null): PrivacyResult {
  if (!isPrivacyCollection(op.collection)) return NONE
  if (op.collection === BLOCK && serviceDid === null) return NONE
  if (!isValidDid(op.repo)) return { event: null, rejected: 'invalid_repo' }
  if (!isValidRkey(op.rkey)) return { event: null, rejected: 'invalid_rkey' }
  const time = op.commitTime
  if (op.collection === BLOCK) {
    const base = { type: 'block', author: op.repo, rkey: op.rkey, time } as const
    if (op.action === 'delete') return { event: { ...base, action: 'delete' } }
    // A block's subject does not change in practice: an update is not a new block.
    if (op.action !== 'create') return NONE
    if (!isObject(op.record)) return { event: null, rejected: 'invalid_record' }
    const subject = op.record.subject
    if (!isValidDid(subject)) return { event: null, rejected: 'invalid_subject' }
    return subject === serviceDid ? { event: { ...base, action: 'create' } } : NONE
  }
  // The profile record is the one at rkey `self`; anything else is not the account's profile.
  if (op.rkey !== 'self') return NONE
  const base = { type: 'label', did: op.repo, time } as const
  if (op.action === 'delete') return { event: { ...base, on: false } }
  if (op.action !== 'create' && op.action !== 'update') return NONE
  if (!isObject(op.record)) return { event: null, rejected: 'invalid_record' }
  const on = hasOptOutLabel(op.record.labels)
  if (on === null) return { event: null, rejected: 'invalid_labels' }
  return { event: { ...base, on } }
}
