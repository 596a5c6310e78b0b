import { P256Keypair, Secp256k1Keypair } from '@atproto/crypto'
import { cidForLex, encode } from '@atproto/lex-cbor'
import { type Commit, verifyCommitSig } from '@atproto/repo'
import { describe, expect, it } from 'vitest'
import { verifyCommitSignature } from './commit-sig.js'

// Ours (OpenSSL) against @atproto/repo's own check (@noble/curves), case by case: the same verdicts.

const ORDER = {
  secp256k1: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
  p256: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
}

/** The same signature with s replaced by n - s (valid to a curve check that allows high s). */
function highS(sig: Uint8Array, n: bigint): Uint8Array {
  const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString('hex')}`)
  const twin = Buffer.from(sig)
  Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex').copy(twin, 32)
  return twin
}

/** Each check's verdict; a check that throws refuses (readRepo makes either `bad_signature`). */
/** The commit with another signature. */
function withSig(commit: Commit, sig: Uint8Array): Commit {
  return { ...commit, sig } as unknown as Commit
}

async function both(commit: Commit, didKey: string): Promise<[boolean, boolean]> {
  const { sig, ...unsigned } = commit
  const theirs = await verifyCommitSig(commit, didKey).catch(() => false)
  let ours: boolean
  try {
    ours = verifyCommitSignature(unsigned, sig, didKey)
  } catch {
    ours = false
  }
  return [theirs, ours]
}

describe.each([
  ['secp256k1', () => Secp256k1Keypair.create()],
  ['p256', () => P256Keypair.create()],
] as const)('verifyCommitSignature with a %s key', (curve, create) => {
  it('agrees with @atproto/repo on a good commit, a changed one, another key, a malleated signature', async () => {
    const key = await create()
    const other = await create()
    const unsigned = {
      did: 'did:plc:abcdefghijklmnopqrstuvwx',
      version: 3,
      data: await cidForLex({ e: [], l: null }),
      rev: '3lbuilt2xyzab',
      prev: null,
    }
    const sig = await key.sign(encode(unsigned))
    const good = { ...unsigned, sig } as unknown as Commit
    expect(await both(good, key.did())).toEqual([true, true])
    expect(await both({ ...good, rev: '3lbuilt2xyzac' }, key.did())).toEqual([false, false])
    expect(await both(good, other.did())).toEqual([false, false])
    // The malleated twin is a valid ECDSA signature (OpenSSL alone would take it): refused by both.
    expect(await both(withSig(good, highS(sig, ORDER[curve])), key.did())).toEqual([false, false])
    expect(await both(withSig(good, sig.subarray(0, 63)), key.did())).toEqual([false, false])
    // A commit with a field more: signed over all of them, as @atproto/repo encodes it.
    const extra = { ...unsigned, extra: 'x' }
    const withExtra = { ...extra, sig: await key.sign(encode(extra)) } as unknown as Commit
    expect(await both(withExtra, key.did())).toEqual([true, true])
  })
})
