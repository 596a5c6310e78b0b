import { Secp256k1Keypair } from '@atproto/crypto'
import {
  concatBytesAsync,
  getFullRepo,
  MemoryBlockstore,
  type RecordCreateOp,
  Repo,
  WriteOpAction,
} from '@atproto/repo'

// A repo made with @atproto/repo exactly as a PDS holds it, and its full CAR as getRepo sends it: for the
// tests of the repo reader (repo-source) and of the backfill that folds what it reads.

export interface TestRecord {
  collection: string
  rkey: string
  record: Record<string, unknown>
}

export interface TestRepo {
  did: string
  key: Secp256k1Keypair
  /** The did:key the commit is signed with. */
  signingKey: string
  /** The CAR as a PDS's getRepo sends it (commit, then the MST walk with its records). */
  car: Uint8Array
}

export async function makeTestRepo(records: TestRecord[], did: string): Promise<TestRepo> {
  const key = await Secp256k1Keypair.create()
  const storage = new MemoryBlockstore()
  const writes = records.map(
    (r): RecordCreateOp => ({ action: WriteOpAction.Create, ...r }) as RecordCreateOp,
  )
  const repo = await Repo.create(storage, did, key, writes)
  const car = await concatBytesAsync(getFullRepo(storage, repo.cid))
  return { did, key, signingKey: key.did(), car }
}
