import type { BlockTable, DigestSet } from './blocks.js'
import { CborError, latin1, MST_ENTRY, readMstNode } from './dag-cbor.js'
import { RepoSourceError } from './errors.js'

/** The blocks a reader kept, and the digests of the ones it dropped. */
export interface KeptBlocks {
  nodes: BlockTable
  records: BlockTable
  dropped: DigestSet
}

/**
 * The wanted leaves in key order, as parallel arrays; `entries` index `KeptBlocks.records`. The rkeys are
 * kept as bytes, made strings when read (`rkey(i)`): 10^5 strings alive from the walk to the end of the
 * fold were what the young-generation collections copied most.
 */
export class WantedLeaves {
  readonly collections: string[] = []
  readonly entries: number[] = []
  /** Leaves of wanted collections whose record block was there but not kept (its `$type` is another). */
  skipped = 0
  private bytes = new Uint8Array(1 << 16)
  /** Where leaf i's rkey ends in `bytes` (it starts where the one before ends). */
  private ends = new Int32Array(1024)
  private used = 0

  get length(): number {
    return this.entries.length
  }

  /** Adds a leaf whose rkey is `key[from, to)`. */
  add(collection: string, key: Uint8Array, from: number, to: number, entry: number): void {
    const i = this.entries.length
    if (this.used + to - from > this.bytes.length) {
      const bigger = new Uint8Array(Math.max(2 * this.bytes.length, this.used + to - from))
      bigger.set(this.bytes.subarray(0, this.used))
      this.bytes = bigger
    }
    if (i === this.ends.length) {
      const bigger = new Int32Array(2 * i)
      bigger.set(this.ends)
      this.ends = bigger
    }
    for (let k = from; k < to; k++) this.bytes[this.used++] = key[k] as number
    this.ends[i] = this.used
    this.collections.push(collection)
    this.entries.push(entry)
  }

  rkey(i: number): string {
    const start = i === 0 ? 0 : (this.ends[i - 1] as number)
    return latin1(this.bytes, start, (this.ends[i] as number) - start)
  }
}

/** Deeper than this is no tree a PDS builds (~4 levels per 65k keys): a hostile one, not walked. */
const MAX_DEPTH = 64
/** Collection NSID (at most 317) + '/' + record key (at most 512). */
const MAX_KEY = 1024

/**
 * Walks the MST in key order from its root node, checks that keys strictly increase, and collects the
 * leaves of the wanted collections whose record is kept. Full (`partial` false): every node and every
 * leaf's record must be in the CAR, else `missing_block`. Partial (a `since` diff): the nodes and records
 * that are absent were not changed; only what is present is walked.
 */
export function walkMst(
  root: Uint8Array,
  blocks: KeptBlocks,
  wanted: ReadonlySet<string>,
  partial: boolean,
): WantedLeaves {
  const walker = new Walker(blocks, wanted, partial)
  walker.node(root, 0, 0)
  return walker.out
}

class Walker {
  readonly out = new WantedLeaves()
  /** Per depth: the key being rebuilt in that node (an entry shares a prefix with the one before). */
  private readonly keys: Uint8Array[] = []
  private readonly last = new Uint8Array(MAX_KEY)
  private lastLength = -1
  private collection = ''
  private collectionWanted = false

  constructor(
    private readonly blocks: KeptBlocks,
    private readonly wanted: ReadonlySet<string>,
    private readonly partial: boolean,
  ) {}

  /** Walks the node whose CID is at `link[linkAt]`. */
  node(link: Uint8Array, linkAt: number, depth: number): void {
    const { nodes } = this.blocks
    const entry = nodes.find(link, linkAt)
    if (entry < 0) {
      if (this.partial) return
      if (this.blocks.records.find(link, linkAt) >= 0 || this.blocks.dropped.has(link, linkAt)) {
        throw mstError('an MST link points at a block that is not an MST node')
      }
      throw new RepoSourceError('missing_block', 'an MST node of the repo is missing from the CAR')
    }
    if (depth > MAX_DEPTH) throw mstError(`the MST is deeper than ${MAX_DEPTH}`)
    const bytes = nodes.slabAt(entry)
    let node: number[]
    try {
      node = readMstNode(bytes, nodes.bytesAt(entry), nodes.endAt(entry))
    } catch (cause) {
      if (!(cause instanceof CborError)) throw cause
      throw mstError(`a malformed MST node: ${cause.message}`, cause)
    }
    const left = node[0] as number
    if (left >= 0) this.node(bytes, left, depth + 1)
    let key = this.keys[depth]
    if (key === undefined) {
      key = new Uint8Array(MAX_KEY)
      this.keys[depth] = key
    }
    let length = 0
    for (let i = 1; i < node.length; i += MST_ENTRY) {
      const p = node[i] as number
      const kAt = node[i + 1] as number
      const kLength = node[i + 2] as number
      if (p > length || p + kLength > MAX_KEY)
        throw mstError('an MST key with a bad prefix or length')
      for (let k = 0; k < kLength; k++) key[p + k] = bytes[kAt + k] as number
      length = p + kLength
      this.leaf(key, length, bytes, node[i + 3] as number)
      const tree = node[i + 4] as number
      if (tree >= 0) this.node(bytes, tree, depth + 1)
    }
  }

  private leaf(key: Uint8Array, length: number, link: Uint8Array, linkAt: number): void {
    const common = this.order(key, length)
    // Sharing the previous key past its slash is sharing its collection: no need to look again.
    if (common <= this.collection.length) {
      let slash = 0
      while (slash < length && key[slash] !== 0x2f) slash++
      if (slash === 0 || slash >= length - 1)
        throw mstError('an MST key that is not collection/rkey')
      this.collection = latin1(key, 0, slash)
      this.collectionWanted = this.wanted.has(this.collection)
    } else if (length <= this.collection.length + 1) {
      throw mstError('an MST key that is not collection/rkey')
    }
    for (let i = common; i < length; i++) this.last[i] = key[i] as number
    this.lastLength = length

    const { records, nodes, dropped } = this.blocks
    if (this.collectionWanted) {
      const entry = records.find(link, linkAt)
      if (entry >= 0) {
        this.out.add(this.collection, key, this.collection.length + 1, length, entry)
      } else if (!this.partial) {
        if (!dropped.has(link, linkAt) && nodes.find(link, linkAt) < 0) throw missingRecord()
        this.out.skipped++
      }
    } else if (!this.partial && !dropped.has(link, linkAt)) {
      // Records of other collections were dropped after their hash check, unless their $type or their
      // shape made them look like blocks worth keeping.
      if (records.find(link, linkAt) < 0 && nodes.find(link, linkAt) < 0) throw missingRecord()
    }
  }

  /** Checks the key comes after the previous one; returns how many bytes they share. */
  private order(key: Uint8Array, length: number): number {
    const last = this.last
    const n = Math.min(length, this.lastLength)
    let i = 0
    while (i < n && key[i] === last[i]) i++
    if (
      this.lastLength >= 0 &&
      (i === length || (i < n && (key[i] as number) < (last[i] as number)))
    ) {
      throw mstError('MST keys out of order')
    }
    return i
  }
}

function mstError(message: string, cause?: unknown): RepoSourceError {
  return new RepoSourceError('bad_mst', message, { cause })
}

function missingRecord(): RepoSourceError {
  return new RepoSourceError('missing_block', 'a record of the repo is missing from the CAR')
}
