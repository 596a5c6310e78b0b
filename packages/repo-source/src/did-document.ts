import {
  formatDidKey,
  multibaseToBytes,
  P256_JWT_ALG,
  parseMultikey,
  SECP256K1_JWT_ALG,
} from '@atproto/crypto'
import { RepoSourceError } from './errors.js'

export interface AtprotoIdentity {
  did: string
  /** The `#atproto_pds` service endpoint, an http(s) URL (not yet checked for private addresses). */
  pds: string
  /**
   * The `#atproto` verification method as a `did:key` (what @atproto/repo checks a commit signature
   * with), or undefined when the document names none or one of a key type atproto does not use.
   */
  signingKey: string | undefined
  handle: string | undefined
}

/**
 * The parts of a DID document atproto uses, checked by hand rather than with @atproto/identity's zod
 * schema: its resolvers fetch with the global fetch, which the SSRF guard cannot pin, and pulling it in
 * for two fields is not worth a dependency.
 */
export function readDidDocument(did: string, doc: unknown): AtprotoIdentity {
  if (!isObject(doc))
    throw new RepoSourceError('bad_document', `DID document of ${did} is not an object`)
  if (doc.id !== did) {
    throw new RepoSourceError('bad_document', `DID document names ${String(doc.id)}, not ${did}`)
  }
  const pds = findById(doc.service, did, '#atproto_pds')
  if (pds?.type !== 'AtprotoPersonalDataServer' || typeof pds.serviceEndpoint !== 'string') {
    throw new RepoSourceError('no_pds', `DID document of ${did} names no atproto PDS`)
  }
  const key = findById(doc.verificationMethod, did, '#atproto')
  const aka = Array.isArray(doc.alsoKnownAs) ? doc.alsoKnownAs : []
  const handleUri = aka.find((v): v is string => typeof v === 'string' && v.startsWith('at://'))
  return {
    did,
    pds: pds.serviceEndpoint,
    signingKey: key ? didKey(key, did) : undefined,
    handle: handleUri?.slice('at://'.length),
  }
}

/**
 * Multikey carries its curve in the multibase bytes; the two legacy types (still served by older PLC
 * directories and did:web hosts) carry bare key bytes and name the curve in `type`, as
 * @atproto/identity's getDidKeyFromMultibase reads them.
 */
function didKey(method: Record<string, unknown>, did: string): string | undefined {
  const multibase = method.publicKeyMultibase
  if (typeof multibase !== 'string') return undefined
  try {
    if (method.type === 'Multikey') {
      const { jwtAlg, keyBytes } = parseMultikey(multibase)
      return formatDidKey(jwtAlg, keyBytes)
    }
    if (method.type === 'EcdsaSecp256r1VerificationKey2019') {
      return formatDidKey(P256_JWT_ALG, multibaseToBytes(multibase))
    }
    if (method.type === 'EcdsaSecp256k1VerificationKey2019') {
      return formatDidKey(SECP256K1_JWT_ALG, multibaseToBytes(multibase))
    }
  } catch (cause) {
    throw new RepoSourceError('bad_document', `the #atproto key of ${did} does not parse`, {
      cause,
    })
  }
  return undefined
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Ids may be relative (`#atproto`) or absolute (`did:...#atproto`); both occur in the wild. */
function findById(
  list: unknown,
  did: string,
  fragment: string,
): Record<string, unknown> | undefined {
  if (!Array.isArray(list)) return undefined
  return list.find(
    (entry): entry is Record<string, unknown> =>
      isObject(entry) && (entry.id === fragment || entry.id === did + fragment),
  )
}
