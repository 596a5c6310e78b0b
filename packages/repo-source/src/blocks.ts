import { CID_LENGTH, latin1 } from './dag-cbor.js'

const B32 = new TextEncoder().encode('abcdefghijklmnopqrstuvwxyz234567')
const cidText = Buffer.alloc(1 + Math.ceil((8 * CID_LENGTH) / 5))

/** The usual text form of a CID (multibase base32, `b...`) from its bytes at `at`. */
export function cidString(bytes: Uint8Array, at = 0): string {
  // Into one reused buffer, then one string: a string built char by char is a rope of 60 pieces.
  cidText[0] = 0x62
  let n = 1
  let bits = 0
  let value = 0
  for (let i = at; i < at + CID_LENGTH; i++) {
    value = ((value << 8) | (bytes[i] as number)) & 0xfff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      cidText[n++] = B32[(value >> bits) & 31] as number
    }
  }
  if (bits > 0) cidText[n++] = B32[(value << (5 - bits)) & 31] as number
  return latin1(cidText, 0, n)
}

/**
 * Blocks kept by CID, found through an open-addressed index on the digest. A block is kept as a view of
 * the CAR chunk it came in (its CID and bytes, adjacent in a CAR): a repo's kept blocks (MST nodes, the
 * wanted records) are most of its CAR, so copying them into slabs of their own cost a copy and the first
 * touch of as much new memory (~50 ms of a fresh process's 36 MB repo) to free little; a chunk stays alive
 * while one of its blocks is kept, so the CAR is still held once at most. The chunks must not be reused
 * by their source once handed over (Node's streams and fetch bodies never do). A Map keyed by CID strings
 * costs a string and a lookup in V8's string table per block and per MST leaf, which was a fifth of the
 * read time on a 100k-record repo.
 */
export class BlockTable {
  /** The chunks blocks are kept in; a block whose CID and bytes are apart is copied into one of its own. */
  private readonly slabs: Uint8Array[] = []
  /** Per entry: its slab, and where its CID starts and its bytes end there (the bytes follow the CID). */
  private slabOf = new Uint32Array(1024)
  private startOf = new Uint32Array(1024)
  private endOf = new Uint32Array(1024)
  private index = new Int32Array(2048).fill(-1)
  /** Per slot of `index`: 32 more bits of the entry's digest, so a miss is told without reading the slab. */
  private tags = new Int32Array(2048)
  private count = 0

  get size(): number {
    return this.count
  }

  /** Keeps the block `data[at, end)` whose CID is at `cidAt`, unless it is kept already. */
  put(data: Uint8Array, cidAt: number, at: number, end: number): void {
    // One walk of the index finds the block if it is kept already, else the free slot for it.
    const mask = this.index.length - 1
    const tag = readU32(data, cidAt + 8) | 0
    let slot = digestWord(data, cidAt) & mask
    for (; ; slot = (slot + 1) & mask) {
      const kept = this.index[slot] as number
      if (kept < 0) break
      if (this.tags[slot] === tag && this.cidEquals(kept, data, cidAt)) return
    }
    let slab = data
    let from = cidAt
    if (at !== cidAt + CID_LENGTH) {
      slab = new Uint8Array(CID_LENGTH + end - at)
      slab.set(data.subarray(cidAt, cidAt + CID_LENGTH))
      slab.set(data.subarray(at, end), CID_LENGTH)
      from = 0
    }
    if (this.slabs[this.slabs.length - 1] !== slab) this.slabs.push(slab)
    const entry = this.count++
    if (entry === this.slabOf.length) this.growEntries()
    this.slabOf[entry] = this.slabs.length - 1
    this.startOf[entry] = from
    this.endOf[entry] = from + CID_LENGTH + end - at
    this.index[slot] = entry
    this.tags[slot] = tag
    if (this.count * 2 > this.index.length) this.rehash()
  }

  /** The entry of the block whose CID is at `cid[cidAt]`, or -1. */
  find(cid: Uint8Array, cidAt: number): number {
    const mask = this.index.length - 1
    const tag = readU32(cid, cidAt + 8) | 0
    for (let i = digestWord(cid, cidAt) & mask; ; i = (i + 1) & mask) {
      const entry = this.index[i] as number
      if (entry < 0) return -1
      if (this.tags[i] === tag && this.cidEquals(entry, cid, cidAt)) return entry
    }
  }

  /** The slab that holds an entry; its bytes are `[bytesAt(entry), endAt(entry))` there. */
  slabAt(entry: number): Uint8Array {
    return this.slabs[this.slabOf[entry] as number] as Uint8Array
  }

  bytesAt(entry: number): number {
    return (this.startOf[entry] as number) + CID_LENGTH
  }

  endAt(entry: number): number {
    return this.endOf[entry] as number
  }

  cidString(entry: number): string {
    return cidString(this.slabAt(entry), this.startOf[entry] as number)
  }

  /** Frees everything; the table is empty afterwards. */
  clear(): void {
    this.slabs.length = 0
    this.slabOf = new Uint32Array(1024)
    this.startOf = new Uint32Array(1024)
    this.endOf = new Uint32Array(1024)
    this.index = new Int32Array(2048).fill(-1)
    this.tags = new Int32Array(2048)
    this.count = 0
  }

  private cidEquals(entry: number, cid: Uint8Array, cidAt: number): boolean {
    const slab = this.slabAt(entry)
    const from = this.startOf[entry] as number
    // From the end: the digest differs at once, the version and hash bytes never do.
    for (let i = CID_LENGTH - 1; i >= 0; i--) if (slab[from + i] !== cid[cidAt + i]) return false
    return true
  }

  private link(entry: number): void {
    const mask = this.index.length - 1
    const slab = this.slabAt(entry)
    const from = this.startOf[entry] as number
    let i = digestWord(slab, from) & mask
    while ((this.index[i] as number) >= 0) i = (i + 1) & mask
    this.index[i] = entry
    this.tags[i] = readU32(slab, from + 8) | 0
  }

  private rehash(): void {
    this.index = new Int32Array(this.index.length * 2).fill(-1)
    this.tags = new Int32Array(this.index.length)
    for (let entry = 0; entry < this.count; entry++) this.link(entry)
  }

  private growEntries(): void {
    const grow = (old: Uint32Array) => {
      const next = new Uint32Array(old.length * 2)
      next.set(old)
      return next
    }
    this.slabOf = grow(this.slabOf)
    this.startOf = grow(this.startOf)
    this.endOf = grow(this.endOf)
  }
}

/** The first 32 bits of a CID's sha2-256 digest: already uniform, so its own hash. */
function digestWord(cid: Uint8Array, cidAt: number): number {
  return readU32(cid, cidAt + 4)
}

/**
 * A compact set of the blocks that were hash-checked and dropped, to tell later that an MST leaf's
 * record was there: 64 bits of each sha2-256 digest in an open-addressed table, 16 bytes a block
 * (a Set of CID strings takes ~80). The digest is already uniform, so it is its own hash; two blocks
 * sharing 64 bits by chance would need ~2^32 blocks.
 */
export class DigestSet {
  private table = new Uint32Array(2 * 1024)
  private count = 0

  get size(): number {
    return this.count
  }

  /** Adds the digest of the CID whose bytes start at `at` (`CID_LENGTH` bytes). */
  add(cid: Uint8Array, at: number): void {
    const hi = readU32(cid, at + 4) || 1
    const lo = readU32(cid, at + 8)
    if (this.insert(hi, lo) && ++this.count * 2 > this.table.length / 2) this.grow()
  }

  has(cid: Uint8Array, at: number): boolean {
    const hi = readU32(cid, at + 4) || 1
    const lo = readU32(cid, at + 8)
    const mask = this.table.length / 2 - 1
    for (let i = lo & mask; ; i = (i + 1) & mask) {
      const h = this.table[2 * i]
      if (h === 0) return false
      if (h === hi && this.table[2 * i + 1] === lo) return true
    }
  }

  /** True when the digest was not in the set yet; slot hi 0 means empty (a 0 digest word counts as 1). */
  private insert(hi: number, lo: number): boolean {
    const mask = this.table.length / 2 - 1
    for (let i = lo & mask; ; i = (i + 1) & mask) {
      const h = this.table[2 * i]
      if (h === 0) {
        this.table[2 * i] = hi
        this.table[2 * i + 1] = lo
        return true
      }
      if (h === hi && this.table[2 * i + 1] === lo) return false
    }
  }

  private grow(): void {
    const old = this.table
    this.table = new Uint32Array(old.length * 2)
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0) this.insert(old[i] as number, old[i + 1] as number)
    }
  }
}

function readU32(bytes: Uint8Array, at: number): number {
  return (
    (((bytes[at] as number) << 24) |
      ((bytes[at + 1] as number) << 16) |
      ((bytes[at + 2] as number) << 8) |
      (bytes[at + 3] as number)) >>>
    0
  )
}
