import { type Commit, cborToLex, cborToLexRecord } from '@atproto/repo'
import { BlockTable, cidString, DigestSet } from './blocks.js'
import { CarParser, type CarSink } from './car-parser.js'
import { verifyCommitSignature } from './commit-sig.js'
import {
  BLOCK_MST,
  BLOCK_RECORD,
  CID_LENGTH,
  classifyBlock,
  decodeRecord,
  GENERIC,
  isRepoCid,
  WantedTypes,
} from './dag-cbor.js'
import { RepoSourceError } from './errors.js'
import { fieldsOf, type InteractionRecord, readFields } from './interaction-fields.js'
import { type KeptBlocks, type WantedLeaves, walkMst } from './mst-walk.js'

/** The collections whose records a backfill folds. */
export const INTERACTION_COLLECTIONS: ReadonlySet<string> = new Set([
  'app.bsky.feed.like',
  'app.bsky.feed.repost',
  'app.bsky.feed.post',
])

export interface ReadRepoOptions {
  /** The repo's DID: its commit must name it. */
  did: string
  /** The did:key the commit must be signed with (`resolvePds(...).signingKey`). */
  signingKey: string
  /** Records of these collections are kept and handed out; the rest is checked and dropped. @default INTERACTION_COLLECTIONS */
  collections?: ReadonlySet<string>
  /** CAR bytes past this: `too_large`. @default no limit (fetchRepo has its own) */
  maxBytes?: number
}

export interface RepoRecord {
  readonly collection: string
  readonly rkey: string
  /** The record's CID, `bafy...` (made when asked for: the fold of interactions does not need it). */
  readonly cid: string
  /** The record decoded as @atproto/repo decodes it (plain objects; CIDs inside as its Cid objects). */
  readonly record: Record<string, unknown>
}

export interface RepoContents {
  did: string
  rev: string
  /** The commit's CID, `bafy...`. */
  commit: string
  /** CAR bytes read. */
  bytes: number
  /** CAR blocks read. */
  blocks: number
  /** Records of the wanted collections that `records()` and `interactions()` hand out (less any they cannot decode). */
  count: number
  /**
   * Leaves of wanted collections left out: a record whose `$type` is not one of the wanted types, and,
   * once `records()` or `interactions()` has run, a record @atproto/repo's decoder refuses (the signature vouches for the
   * bytes the author's client wrote, not that they are a valid record: one bad record skips that
   * record, as the live stream does, not the repo).
   */
  skipped: number
  /** The wanted records in key order (collection, then rkey), decoded one at a time. */
  records(): Iterable<RepoRecord>
  /**
   * The same records as `records()`, each as the few values a fold of interactions reads of it
   * (`InteractionFields`), read from its bytes without decoding it whole when it can be.
   */
  interactions(): Iterable<InteractionRecord>
}

/**
 * Reads a whole repo CAR (`getRepo`) as it streams and verifies all of it before handing out a record:
 * one root, every block's hash, a v3 commit of `did` signed by `signingKey`, every MST node and every
 * leaf's record present, MST keys in order. Any failure is a `RepoSourceError` and nothing is handed
 * out, so a refused repo is never half-applied.
 *
 * Memory: the CAR is held once at most; MST nodes and the records of wanted types are kept (as views of
 * the chunks they came in, which the source must not reuse: Node's streams and fetch bodies do not), every
 * other block is hash-checked and dropped, leaving 64 bits of its digest to prove it was there; a chunk
 * is freed once none of its blocks is kept. Block order in a CAR is free, so what to keep is told per
 * block from its shape and `$type`.
 */
export function readRepo(
  car: AsyncIterable<Uint8Array>,
  opts: ReadRepoOptions,
): Promise<RepoContents> {
  return read(car, opts, false)
}

/**
 * Reads the CAR of `getRepo?since=rev`: only the blocks written after `rev`. The commit is verified as
 * in `readRepo` and every block's hash checked; the MST nodes that are present are walked and the
 * leaves whose records are present are handed out: the records created (or changed) since `rev`.
 * Deletions are not visible in such a CAR.
 */
export function readRepoDiff(
  car: AsyncIterable<Uint8Array>,
  opts: ReadRepoOptions,
): Promise<RepoContents> {
  return read(car, opts, true)
}

async function read(
  car: AsyncIterable<Uint8Array>,
  opts: ReadRepoOptions,
  partial: boolean,
): Promise<RepoContents> {
  const wanted = opts.collections ?? INTERACTION_COLLECTIONS
  const sink = new KeepingSink(new WantedTypes(wanted))
  const parser = new CarParser(sink, opts.maxBytes ?? Number.POSITIVE_INFINITY)
  let commit: VerifiedCommit | undefined
  try {
    for await (const chunk of car) {
      parser.push(chunk)
      // The commit usually comes first: a repo signed by another key is refused before its download ends.
      if (commit === undefined && sink.commit !== undefined)
        commit = await verifyCommit(sink.commit, opts)
    }
  } catch (cause) {
    if (cause instanceof RepoSourceError) throw cause
    throw new RepoSourceError('network', 'reading the CAR failed', { cause })
  }
  parser.end()
  if (sink.commit === undefined) {
    throw new RepoSourceError('missing_block', 'the commit block (the CAR root) is missing')
  }
  commit ??= await verifyCommit(sink.commit, opts)
  const leaves = walkMst(commit.data, sink, wanted, partial)
  // The tree is checked: its nodes are no longer needed, the records are.
  sink.nodes.clear()
  return contents(opts.did, commit, sink.rootCid, parser, sink.records, leaves)
}

/** Keeps what the walk and the caller need, drops the rest after its hash check (done by the parser). */
class KeepingSink implements CarSink, KeptBlocks {
  readonly nodes = new BlockTable()
  readonly records = new BlockTable()
  readonly dropped = new DigestSet()
  commit: Uint8Array | undefined
  rootCid = new Uint8Array(0)

  constructor(private readonly wanted: WantedTypes) {}

  root(cid: Uint8Array): void {
    this.rootCid = cid.slice()
  }

  block(data: Uint8Array, cidAt: number, at: number, end: number): void {
    // Raw blocks (codec 0x55) are never a node, a record or the commit.
    if (data[cidAt + 1] !== 0x71) {
      this.dropped.add(data, cidAt)
      return
    }
    if (this.isRoot(data, cidAt)) {
      this.commit = data.slice(at, end)
      return
    }
    const kind = classifyBlock(data, at, end, this.wanted)
    if (kind === BLOCK_MST) this.nodes.put(data, cidAt, at, end)
    else if (kind === BLOCK_RECORD) this.records.put(data, cidAt, at, end)
    else this.dropped.add(data, cidAt)
  }

  private isRoot(data: Uint8Array, cidAt: number): boolean {
    const root = this.rootCid
    for (let i = CID_LENGTH - 1; i >= 0; i--) if (data[cidAt + i] !== root[i]) return false
    return true
  }
}

interface VerifiedCommit {
  rev: string
  data: Uint8Array
}

async function verifyCommit(bytes: Uint8Array, opts: ReadRepoOptions): Promise<VerifiedCommit> {
  let value: unknown
  try {
    value = cborToLex(bytes)
  } catch (cause) {
    throw new RepoSourceError('bad_commit', 'the commit block is not valid DAG-CBOR', { cause })
  }
  const commit = value as Partial<Commit> | null
  const data = (commit?.data as { bytes?: unknown } | undefined)?.bytes
  if (
    commit === null ||
    typeof commit !== 'object' ||
    commit.version !== 3 ||
    typeof commit.did !== 'string' ||
    typeof commit.rev !== 'string' ||
    !(commit.sig instanceof Uint8Array) ||
    !(data instanceof Uint8Array) ||
    data.length !== CID_LENGTH ||
    !isRepoCid(data, 0)
  ) {
    throw new RepoSourceError('bad_commit', 'the CAR root is not a v3 repo commit')
  }
  if (commit.did !== opts.did) {
    throw new RepoSourceError('wrong_did', `the commit is for ${commit.did}, not ${opts.did}`)
  }
  let valid: boolean
  try {
    const { sig, ...unsigned } = commit
    valid = verifyCommitSignature(unsigned, sig, opts.signingKey)
  } catch (cause) {
    throw new RepoSourceError('bad_signature', `cannot check the commit with ${opts.signingKey}`, {
      cause,
    })
  }
  if (!valid) {
    throw new RepoSourceError('bad_signature', `the commit is not signed by ${opts.signingKey}`)
  }
  return { rev: commit.rev, data }
}

function contents(
  did: string,
  commit: VerifiedCommit,
  rootCid: Uint8Array,
  parser: CarParser,
  blocks: BlockTable,
  leaves: WantedLeaves,
): RepoContents {
  // Counted once however often the records are read.
  const undecodable = new Set<number>()
  const out: RepoContents = {
    did,
    rev: commit.rev,
    commit: cidString(rootCid),
    bytes: parser.bytes,
    blocks: parser.blocks,
    count: leaves.entries.length,
    skipped: leaves.skipped,
    *records() {
      const { collections, entries } = leaves
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i] as number
        const record = decode(blocks, entry, i)
        if (record === undefined) continue
        yield new Leaf(collections[i] as string, leaves.rkey(i), record, blocks, entry)
      }
    },
    *interactions() {
      const { collections, entries } = leaves
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i] as number
        const r: InteractionRecord = {
          fields: true,
          collection: collections[i] as string,
          rkey: leaves.rkey(i),
          createdAtMs: Number.NaN,
          subject: null,
          replyParent: undefined,
          quoted: undefined,
          textChars: -1,
        }
        if (!readFields(blocks.slabAt(entry), blocks.bytesAt(entry), blocks.endAt(entry), r)) {
          const record = decode(blocks, entry, i)
          if (record === undefined) continue
          Object.assign(r, fieldsOf(record))
        }
        yield r
      }
    },
  }
  /** A record decoded whole, or undefined (counted once in `skipped`) when it cannot be. */
  const decode = (
    blocks: BlockTable,
    entry: number,
    i: number,
  ): Record<string, unknown> | undefined => {
    const slab = blocks.slabAt(entry)
    const at = blocks.bytesAt(entry)
    const end = blocks.endAt(entry)
    const record = decodeRecord(slab, at, end)
    if (record !== GENERIC) return record as Record<string, unknown>
    try {
      return cborToLexRecord(slab.subarray(at, end)) as Record<string, unknown>
    } catch {
      if (!undecodable.has(i)) out.skipped++
      undecodable.add(i)
      return undefined
    }
  }
  return out
}

class Leaf implements RepoRecord {
  constructor(
    readonly collection: string,
    readonly rkey: string,
    readonly record: Record<string, unknown>,
    private readonly blocks: BlockTable,
    private readonly entry: number,
  ) {}

  get cid(): string {
    return this.blocks.cidString(this.entry)
  }
}
