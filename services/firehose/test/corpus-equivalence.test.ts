import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { type CorpusFrame, readCorpus, synthesizeFrames } from '@circles/testkit'
import { describe, expect, it } from 'vitest'
import { decodeFrame } from '../src/fast-decoder.js'
import type { FrameResult } from '../src/frame-result.js'
import { decodeFrameStock } from './stock-decoder.js'

// The fast path against the stock skyware path on real frames: the corpus recorded from a local PDS
// (packages/testkit/corpus) and freshly generated, signed @atproto/repo commits with real MSTs.

const corpusDir = fileURLToPath(new URL('../../../packages/testkit/corpus/', import.meta.url))
const NOW = Date.now()

function comparable(r: FrameResult) {
  return { seq: r.seq, events: r.events, skipped: r.skipped, self: r.self, n: r.interactions }
}

async function compareAll(frames: CorpusFrame[]): Promise<FrameResult[]> {
  const out: FrameResult[] = []
  for (const f of frames) {
    const fast = decodeFrame(f.data, NOW)
    expect(comparable(fast)).toEqual(comparable(await decodeFrameStock(f.data, NOW)))
    if (f.seq > 0) expect(fast.seq).toBe(f.seq)
    out.push(fast)
  }
  return out
}

describe('fast decoder = stock decoder on real frames', () => {
  it('on the corpus recorded from a local PDS, which yields the recorded interactions', async () => {
    const frames = await readCorpus(`${corpusDir}small.bin.gz`)
    expect(frames.length).toBeGreaterThan(900)
    const results = await compareAll(frames)
    const expected = JSON.parse(
      await readFile(`${corpusDir}small.expected.json`, 'utf8'),
    ) as Record<string, unknown>[]
    // The expected list holds the interactions (identity and account frames of account creation aside).
    const interaction = (e: { type?: unknown }) => e.type === 'create' || e.type === 'delete'
    const got = results.flatMap((r) => r.events).filter(interaction)
    const want = expected.filter(interaction)
    expect(want.length).toBeGreaterThan(700)
    expect(got).toHaveLength(want.length)
    got.forEach((e, i) => {
      expect(e).toMatchObject(want[i] as object)
    })
  })

  it('on generated signed commits (real MSTs and CARs)', async () => {
    const frames: CorpusFrame[] = []
    for await (const f of synthesizeFrames({ commits: 150, repos: 6, seed: 3 })) frames.push(f)
    const results = await compareAll(frames)
    expect(results.filter((r) => r.kind === 'commit').length).toBeGreaterThan(150)
    expect(results.reduce((n, r) => n + r.interactions, 0)).toBeGreaterThan(100)
  })
})
