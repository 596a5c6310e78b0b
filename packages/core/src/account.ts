import type { AccountEvent, IdentityEvent } from './interaction.js'
import { isValidDid, isValidHandle } from './syntax.js'

/** An #identity frame to an event; null when its DID is invalid. An invalid handle becomes null (drop cache). */
export function toIdentityEvent(did: unknown, handle: unknown, time: number): IdentityEvent | null {
  if (!isValidDid(did)) return null
  return {
    type: 'identity',
    did,
    handle: isValidHandle(handle) ? handle.toLowerCase() : null,
    time,
  }
}

const STATUS_RE = /^[a-z][a-zA-Z]{0,63}$/

/** An #account frame to an event; null when its DID is invalid or `active` is not a boolean. */
export function toAccountEvent(
  did: unknown,
  active: unknown,
  status: unknown,
  time: number,
): AccountEvent | null {
  if (!isValidDid(did) || typeof active !== 'boolean') return null
  const s = typeof status === 'string' && STATUS_RE.test(status) ? status : null
  return { type: 'account', did, active, status: active ? null : (s ?? 'unknown'), time }
}

/** Statuses after which an account's interactions must leave the index and every circle. */
export function isPurgeStatus(event: AccountEvent): boolean {
  return !event.active && (event.status === 'deleted' || event.status === 'takendown')
}
