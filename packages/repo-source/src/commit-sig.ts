import { createPublicKey, type KeyObject, verify } from 'node:crypto'
import {
  extractMultikey,
  extractPrefixedBytes,
  hasPrefix,
  P256_DID_PREFIX,
  SECP256K1_DID_PREFIX,
} from '@atproto/crypto'
import { encode } from '@atproto/lex-cbor'

// A commit's signature checked as @atproto/repo's `verifyCommitSig` checks it (the commit without `sig`
// encoded as DAG-CBOR, its SHA-256 signed with the did:key's secp256k1 or P-256 key, the signature 64
// bytes r|s with a low s: no DER form, no malleated twin), through OpenSSL rather than @noble/curves. The
// pure-JS curve built its tables on a process's first check, ~70 ms of a fresh worker's first repo
// (BENCHMARKS.md, "Backfill"); OpenSSL has them built in.

/** DER SubjectPublicKeyInfo heads (SEQUENCE, algorithm ecPublicKey + the curve's OID), before the BIT STRING. */
const SPKI_ALGORITHM = {
  secp256k1: Buffer.from('301006072a8648ce3d020106052b8104000a', 'hex'),
  p256: Buffer.from('301306072a8648ce3d020106082a8648ce3d030107', 'hex'),
}
/** The group orders: a valid r and s are in [1, n), a low s at most n / 2. */
const ORDER = {
  secp256k1: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
  p256: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
}
type Curve = keyof typeof ORDER

const keys = new Map<string, { curve: Curve; key: KeyObject }>()

/** The curve and the public key of a did:key (cached: a worker sees the same few keys again). */
function publicKey(didKey: string): { curve: Curve; key: KeyObject } {
  const known = keys.get(didKey)
  if (known) return known
  const prefixed = extractPrefixedBytes(extractMultikey(didKey))
  let curve: Curve
  if (hasPrefix(prefixed, SECP256K1_DID_PREFIX)) curve = 'secp256k1'
  else if (hasPrefix(prefixed, P256_DID_PREFIX)) curve = 'p256'
  else throw new Error(`Unsupported key type: ${didKey}`)
  // A compressed (33 bytes) or uncompressed (65 bytes) point, as the curve library takes either.
  const point = prefixed.subarray(2)
  if (point.length !== 33 && point.length !== 65) throw new Error(`a key of ${point.length} bytes`)
  const algorithm = SPKI_ALGORITHM[curve]
  const bits = Buffer.concat([Buffer.from([0x03, point.length + 1, 0x00]), point])
  const body = Buffer.concat([algorithm, bits])
  const der = Buffer.concat([Buffer.from([0x30, body.length]), body])
  const found = { curve, key: createPublicKey({ key: der, format: 'der', type: 'spki' }) }
  if (keys.size > 1000) keys.clear()
  keys.set(didKey, found)
  return found
}

function bigAt(sig: Uint8Array, at: number): bigint {
  return BigInt(`0x${Buffer.from(sig.buffer, sig.byteOffset + at, 32).toString('hex')}`)
}

/**
 * Whether `sig` signs the commit `unsigned` (its fields but `sig`) with the key of `didKey`. Throws on a
 * did:key that is not a secp256k1 or P-256 key, as @atproto/crypto does.
 */
export function verifyCommitSignature(
  unsigned: Record<string, unknown>,
  sig: Uint8Array,
  didKey: string,
): boolean {
  const { curve, key } = publicKey(didKey)
  if (sig.length !== 64) return false
  const n = ORDER[curve]
  const r = bigAt(sig, 0)
  const s = bigAt(sig, 32)
  if (r === 0n || r >= n || s === 0n || s > n >> 1n) return false
  // The decoded commit's values are lex values (CIDs as its Cid objects): what encode takes.
  const bytes = encode(unsigned as Parameters<typeof encode>[0])
  return verify('sha256', bytes, { key, dsaEncoding: 'ieee-p1363' }, sig)
}
