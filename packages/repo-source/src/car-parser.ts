import { hash } from 'node:crypto'
import { CborError, CID_LENGTH, isRepoCid, readCarHeader } from './dag-cbor.js'
import { RepoSourceError } from './errors.js'

/**
 * Where a parsed CAR goes; blocks arrive hash-checked, as views of the chunk pushed (or, for a block cut
 * by a chunk boundary, of an array joined for it): the parser never writes to either, so a sink may keep
 * them as long as the chunks' source does not reuse them.
 */
export interface CarSink {
  /** The one root of the header, as its CID bytes. */
  root(cid: Uint8Array): void
  /** A block: its CID is `data[cidAt, cidAt + CID_LENGTH)`, its bytes `data[at, end)`. */
  block(data: Uint8Array, cidAt: number, at: number, end: number): void
}

/** A CAR header is a few dozen bytes; anything near this is not a repo CAR. */
const MAX_HEADER = 4096
/**
 * No repo block comes near this (records are capped far below by every PDS, MST nodes are a few KB):
 * a length past it is refused at once instead of being waited for up to the byte limit.
 */
const MAX_BLOCK = 8 * 1024 * 1024

/**
 * A CARv1 parser fed chunk by chunk: it never holds more than the chunk at hand and the one block that
 * straddles it, checks that every block's bytes hash to its CID (sha2-256, as every repo CID is) and
 * hands each block to the sink. Chunks of a block that spans many of them are collected and joined once,
 * so a large block costs one copy, not one per chunk.
 */
export class CarParser {
  /** Bytes pushed so far. */
  bytes = 0
  /** Blocks read so far. */
  blocks = 0
  private headerRead = false
  private parts: Uint8Array[] = []
  private partsLength = 0
  /** Bytes the pending parts must reach before parsing can go on. */
  private need = 0

  constructor(
    private readonly sink: CarSink,
    private readonly maxBytes: number,
  ) {}

  push(piece: Uint8Array): void {
    // A plain view: a Buffer's subarray goes through Node's Buffer wrapper, and one kind of array
    // everywhere keeps the byte-reading code monomorphic (slabs are Uint8Arrays).
    const chunk =
      piece.constructor === Uint8Array
        ? piece
        : new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength)
    this.bytes += chunk.length
    if (this.bytes > this.maxBytes) {
      throw new RepoSourceError('too_large', `the CAR passed the limit of ${this.maxBytes} bytes`)
    }
    let at = 0
    // A block cut by the chunk boundary: joined from its pieces and just the bytes it lacks (a varint
    // cut too takes a few rounds), not by copying the whole next chunk behind it.
    while (this.partsLength > 0) {
      const take = Math.min(chunk.length - at, this.need - this.partsLength)
      this.parts.push(chunk.subarray(at, at + take))
      this.partsLength += take
      at += take
      if (this.partsLength < this.need) return
      const joined = concat(this.parts, this.partsLength)
      this.parts = []
      this.partsLength = 0
      this.keep(joined, this.parse(joined, 0))
    }
    this.keep(chunk, this.parse(chunk, at))
  }

  /** Holds the unparsed rest of `data` from `at` until more bytes come. */
  private keep(data: Uint8Array, at: number): void {
    if (at < data.length) {
      this.parts.push(data.subarray(at))
      this.partsLength = data.length - at
    }
  }

  /** The stream has ended: a CAR cut inside its header or a block is refused here. */
  end(): void {
    if (!this.headerRead)
      throw new RepoSourceError('bad_car', 'not a CAR: the body ended before its header')
    if (this.partsLength > 0) {
      throw new RepoSourceError(
        'bad_car',
        `the CAR is cut short inside a block (after ${this.bytes} bytes)`,
      )
    }
  }

  /** Parses what `data` holds in full from `at`; returns where the unparsed rest starts and sets `need`. */
  private parse(data: Uint8Array, from: number): number {
    let at = from
    for (;;) {
      // A varint of up to 5 bytes: no block or header is anywhere near 2^35 bytes.
      let len = 0
      let p = at
      let shift = 0
      for (;;) {
        if (p >= data.length) {
          this.need = data.length - at + 1
          return at
        }
        const b = data[p++] as number
        len += (b & 0x7f) * 2 ** shift
        if (b < 0x80) break
        shift += 7
        if (shift > 28)
          throw new RepoSourceError('bad_car', 'not a CAR: a length prefix is too long')
      }
      if (!this.headerRead && len > MAX_HEADER) {
        throw new RepoSourceError('bad_car', `not a CAR: a header of ${len} bytes`)
      }
      if (len > MAX_BLOCK) throw new RepoSourceError('bad_car', `a block of ${len} bytes`)
      if (p + len > data.length) {
        this.need = p + len - at
        return at
      }
      if (this.headerRead) this.block(data, p, p + len)
      else this.header(data.subarray(p, p + len))
      at = p + len
    }
  }

  private header(bytes: Uint8Array): void {
    let roots: Uint8Array[]
    try {
      roots = readCarHeader(bytes)
    } catch (cause) {
      if (!(cause instanceof CborError)) throw cause
      throw new RepoSourceError('bad_car', `not a CAR: ${cause.message}`, { cause })
    }
    const root = roots[0]
    if (roots.length !== 1 || root === undefined) {
      throw new RepoSourceError('bad_car', `a repo CAR has one root, this one has ${roots.length}`)
    }
    if (root[1] !== 0x71) throw new RepoSourceError('bad_car', 'the CAR root is not a dag-cbor CID')
    this.headerRead = true
    this.sink.root(root)
  }

  private block(data: Uint8Array, cidAt: number, end: number): void {
    this.blocks++
    const at = cidAt + CID_LENGTH
    if (at > end || !isRepoCid(data, cidAt)) {
      throw new RepoSourceError(
        'bad_block',
        `block ${this.blocks}: not a CIDv1 sha2-256 dag-cbor or raw CID`,
      )
    }
    // As a latin1 ('binary') string, not a Buffer: a Buffer per block is an ArrayBuffer with its own backing store
    // for the young-generation GC to sweep, which cost more than the hashing itself.
    const digest = hash('sha256', data.subarray(at, end), 'binary')
    let i = 31
    while (i >= 0 && digest.charCodeAt(i) === data[cidAt + 4 + i]) i--
    if (i >= 0) {
      throw new RepoSourceError(
        'bad_block',
        `block ${this.blocks}: its bytes do not hash to its CID`,
      )
    }
    this.sink.block(data, cidAt, at, end)
  }
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length)
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}
