import type { LedgerWriter, RecordRef } from './ledger-writer.js'
import type { LocalPds, PdsAccount } from './local-pds.js'

// A fixed script of what six accounts do to each other, covering every case an interaction index must get
// right: likes, an unlike, a re-like in one commit, reposts and an unrepost, a thread whose replies answer
// a parent that is not the root, quotes of both embed types, a reply that also quotes, deleted replies and
// quotes, self-interactions of every kind, and interactions both ways with `eve`, who then deletes her
// account (the caller does that, after checking she was indexed).

export const SCRIPT_ACCOUNTS = ['ali', 'bob', 'cat', 'dan', 'eve', 'fay'] as const
export type ScriptAccount = (typeof SCRIPT_ACCOUNTS)[number]
export type ScriptAccounts = Record<ScriptAccount, PdsAccount>

/** Creates the script's accounts on the PDS (handles `<name><tag><n>.test`). */
export async function createScriptAccounts(pds: LocalPds): Promise<ScriptAccounts> {
  const out = {} as ScriptAccounts
  for (const name of SCRIPT_ACCOUNTS) out[name] = await pds.createAccount(name)
  return out
}

/**
 * Runs the script; the writer notes each write in its ledger. Each line's comment says what it means by
 * the documented semantics. ali's partners end with distinct circle scores under the API's default
 * weights (cat 7, bob 6, dan 5), so the order of her circle is determined.
 */
export async function runLedgerScript(w: LedgerWriter, a: ScriptAccounts): Promise<void> {
  const { ali, bob, cat, dan, eve, fay } = a
  const pAli = await w.post(ali)
  const pAli2 = await w.post(ali)
  const pBob = await w.post(bob)
  const pCat = await w.post(cat)
  const pDan = await w.post(dan)
  const pEve = await w.post(eve)
  const pFay = await w.post(fay)

  await w.like(bob, pAli) // likes
  await w.like(bob, pAli2)
  await w.like(cat, pAli)
  await w.like(dan, pBob)
  await w.like(ali, pCat)
  await w.remove(dan, await w.like(dan, pCat)) // unlike
  await w.relike(ali, await w.like(ali, pBob), pBob) // re-like: delete + create in one commit

  await w.repost(cat, pAli) // reposts
  await w.repost(ali, pDan)
  await w.remove(dan, await w.repost(dan, pBob)) // unrepost

  // A thread rooted at ali's post: each reply is to the author of its parent, not of the root.
  const r1 = await w.post(bob, { reply: { root: pAli, parent: pAli } }) // bob -> ali
  const r2 = await w.post(cat, { reply: { root: pAli, parent: r1 } }) // cat -> bob
  await w.post(dan, { reply: { root: pAli, parent: r2 } }) // dan -> cat
  await w.remove(ali, await w.post(ali, { reply: { root: pDan, parent: pDan } })) // a deleted reply

  await w.post(dan, { quote: pAli }) // quote through app.bsky.embed.record
  await w.post(bob, { quote: pCat, withMedia: true }) // through app.bsky.embed.recordWithMedia
  await w.post(dan, { reply: { root: pCat, parent: pCat }, quote: pBob }) // reply to cat AND quote of bob
  await w.remove(cat, await w.post(cat, { quote: pDan })) // a deleted quote

  await selfInteractions(w, ali, pAli, pAli2)
  await selfInteractions(w, fay, pFay, pFay)
  await w.post(cat, { reply: { root: pCat, parent: pCat }, quote: pAli }) // self-reply: only cat -> ali

  // eve, who will delete her account: interactions both ways, one in ali's thread under bob.
  await w.like(eve, pAli)
  await w.post(eve, { reply: { root: pBob, parent: pBob } })
  await w.like(ali, pEve)
  await w.repost(cat, pEve)
  await w.post(dan, { quote: pEve, withMedia: true })
  const rEve = await w.post(eve, { reply: { root: pAli, parent: r1 } }) // eve -> bob
  await w.post(bob, { reply: { root: pAli, parent: rEve } }) // bob -> eve
}

/** Every kind aimed at one's own posts: none may count anywhere. */
async function selfInteractions(
  w: LedgerWriter,
  who: PdsAccount,
  own: RecordRef,
  own2: RecordRef,
): Promise<void> {
  await w.like(who, own)
  await w.repost(who, own)
  await w.post(who, { reply: { root: own, parent: own2 } })
  await w.post(who, { quote: own2 })
  await w.post(who, { quote: own, withMedia: true })
}
