import { createReadStream, createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { decodeFirst } from '@atcute/cbor'

/**
 * A corpus file holds raw firehose frames exactly as they crossed the websocket.
 *
 * Layout (all integers big-endian):
 *   magic   8 bytes  `CFRAMES1`
 *   record  repeated: u32 frame length N, u64 seq (0 when the frame has none), N bytes of frame
 *
 * The seq is stored beside the frame so the replay server can honour `?cursor=` without decoding
 * CBOR. A file may be gzip-compressed as a whole (the reader detects the gzip magic); the checked-in
 * small corpus is, the generated large one is not (it is read on every benchmark run).
 */
export const CORPUS_MAGIC = 'CFRAMES1'

export interface CorpusFrame {
  /** The frame's `seq`, or 0 for frames without one (info and error frames). */
  seq: number
  /** The raw websocket message: CBOR header followed by CBOR body. */
  data: Uint8Array
}

export class CorpusError extends Error {
  override name = 'CorpusError'
}

const HEADER_BYTES = 12

/** Reads the seq from a raw frame (header + body); 0 when the body has no integer seq. */
export function frameSeq(data: Uint8Array): number {
  try {
    const [, rest] = decodeFirst(data)
    const [body] = decodeFirst(rest)
    const seq = (body as { seq?: unknown } | null)?.seq
    return typeof seq === 'number' && Number.isSafeInteger(seq) && seq > 0 ? seq : 0
  } catch {
    return 0
  }
}

/** Reads the `t` of a frame header (`#commit`, `#identity`...), or `#error` / undefined. */
export function frameType(data: Uint8Array): string | undefined {
  try {
    const [header] = decodeFirst(data) as [{ op?: unknown; t?: unknown }, Uint8Array]
    if (header.op === -1) return '#error'
    return typeof header.t === 'string' ? header.t : undefined
  } catch {
    return undefined
  }
}

export function encodeCorpus(frames: Iterable<CorpusFrame>): Buffer {
  const parts: Buffer[] = [Buffer.from(CORPUS_MAGIC, 'latin1')]
  for (const f of frames)
    parts.push(recordHeader(f), Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength))
  return Buffer.concat(parts)
}

export function decodeCorpus(file: Uint8Array): CorpusFrame[] {
  let buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength)
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf)
  if (buf.subarray(0, 8).toString('latin1') !== CORPUS_MAGIC) {
    throw new CorpusError(`not a corpus file (expected magic ${CORPUS_MAGIC})`)
  }
  const frames: CorpusFrame[] = []
  let pos = 8
  while (pos < buf.length) {
    if (pos + HEADER_BYTES > buf.length)
      throw new CorpusError(`truncated record header at byte ${pos}`)
    const len = buf.readUInt32BE(pos)
    const seq = Number(buf.readBigUInt64BE(pos + 4))
    pos += HEADER_BYTES
    if (pos + len > buf.length) throw new CorpusError(`truncated frame at byte ${pos}`)
    frames.push({ seq, data: buf.subarray(pos, pos + len) })
    pos += len
  }
  return frames
}

export async function readCorpus(path: string): Promise<CorpusFrame[]> {
  return decodeCorpus(await readFile(path))
}

/** Appends frames to a corpus file as they arrive (the recorder's path). Uncompressed. */
export class CorpusWriter {
  readonly #out: WriteStream
  #count = 0
  #bytes = 0

  private constructor(out: WriteStream) {
    this.#out = out
  }

  static async open(path: string): Promise<CorpusWriter> {
    await mkdir(dirname(path), { recursive: true })
    const out = createWriteStream(path)
    out.write(Buffer.from(CORPUS_MAGIC, 'latin1'))
    return new CorpusWriter(out)
  }

  get count(): number {
    return this.#count
  }

  get bytes(): number {
    return this.#bytes
  }

  /** Resolves when the stream can take more (callers that write in a loop should await it). */
  async write(frame: CorpusFrame): Promise<void> {
    this.#count++
    this.#bytes += frame.data.byteLength
    const a = this.#out.write(recordHeader(frame))
    const b = this.#out.write(frame.data)
    if (!a || !b) await new Promise<void>((resolve) => this.#out.once('drain', resolve))
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#out.end((err?: Error | null) => (err ? reject(err) : resolve()))
    })
  }
}

/** Streams a corpus file frame by frame without holding it all (for very large files). */
export async function* iterateCorpus(path: string): AsyncGenerator<CorpusFrame> {
  let pending: Buffer = Buffer.alloc(0)
  let sawMagic = false
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    pending = pending.length === 0 ? (chunk as Buffer) : Buffer.concat([pending, chunk as Buffer])
    let pos = 0
    if (!sawMagic) {
      if (pending.length < 8) continue
      if (pending[0] === 0x1f && pending[1] === 0x8b) {
        throw new CorpusError('iterateCorpus reads uncompressed files only; use readCorpus')
      }
      if (pending.subarray(0, 8).toString('latin1') !== CORPUS_MAGIC) {
        throw new CorpusError(`not a corpus file (expected magic ${CORPUS_MAGIC})`)
      }
      sawMagic = true
      pos = 8
    }
    while (pos + HEADER_BYTES <= pending.length) {
      const len = pending.readUInt32BE(pos)
      if (pos + HEADER_BYTES + len > pending.length) break
      const seq = Number(pending.readBigUInt64BE(pos + 4))
      yield { seq, data: pending.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + len) }
      pos += HEADER_BYTES + len
    }
    pending = pending.subarray(pos)
  }
  if (pending.length > 0)
    throw new CorpusError(`truncated corpus: ${pending.length} trailing bytes`)
}

function recordHeader(frame: CorpusFrame): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES)
  h.writeUInt32BE(frame.data.byteLength, 0)
  h.writeBigUInt64BE(BigInt(frame.seq), 4)
  return h
}
