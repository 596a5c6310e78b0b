import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import {
  CorpusError,
  type CorpusFrame,
  CorpusWriter,
  decodeCorpus,
  encodeCorpus,
  iterateCorpus,
  readCorpus,
} from '../src/corpus.js'

const dir = await mkdtemp(join(tmpdir(), 'corpus-test-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

function sample(n: number): CorpusFrame[] {
  return Array.from({ length: n }, (_, i) => ({
    seq: i === 3 ? 0 : 2 ** 40 + i, // a frame without seq, and seqs beyond 32 bits
    data: Uint8Array.from({ length: (i * 37) % 300 }, (_, j) => (i + j) & 255),
  }))
}

function plain(frames: CorpusFrame[]) {
  return frames.map((f) => ({ seq: f.seq, data: Buffer.from(f.data).toString('hex') }))
}

describe('corpus files', () => {
  it('round-trips frames, plain and gzip', () => {
    const frames = sample(50)
    const file = encodeCorpus(frames)
    expect(plain(decodeCorpus(file))).toEqual(plain(frames))
    expect(plain(decodeCorpus(gzipSync(file)))).toEqual(plain(frames))
  })

  it('rejects a wrong magic and a truncated file', () => {
    const file = encodeCorpus(sample(5))
    expect(() => decodeCorpus(Buffer.from('NOTACORPUS'))).toThrow(CorpusError)
    expect(() => decodeCorpus(file.subarray(0, file.length - 1))).toThrow(/truncated/)
  })

  it('writes incrementally and streams back the same frames', async () => {
    const frames = sample(2000)
    const path = join(dir, 'w.bin')
    const w = await CorpusWriter.open(path)
    for (const f of frames) await w.write(f)
    await w.close()
    expect(w.count).toBe(2000)
    expect(plain(await readCorpus(path))).toEqual(plain(frames))
    const streamed: CorpusFrame[] = []
    for await (const f of iterateCorpus(path))
      streamed.push({ seq: f.seq, data: Uint8Array.from(f.data) })
    expect(plain(streamed)).toEqual(plain(frames))
  })

  it('streaming refuses a truncated file', async () => {
    const path = join(dir, 't.bin')
    const file = encodeCorpus(sample(10))
    await writeFile(path, file.subarray(0, file.length - 3))
    await expect(async () => {
      for await (const _ of iterateCorpus(path)) {
        // drain
      }
    }).rejects.toThrow(CorpusError)
  })
})
