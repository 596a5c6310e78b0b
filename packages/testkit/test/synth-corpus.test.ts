import { decodeFirst, fromBytes } from '@atcute/cbor'
import { cborToLex, readCarWithRoot, verifyCommitSig } from '@atproto/repo'
import { describe, expect, it } from 'vitest'
import { type CorpusFrame, frameType } from '../src/corpus.js'
import { referenceEvents } from '../src/reference.js'
import { type SynthStats, synthesizeFrames } from '../src/synth-corpus.js'

describe('synthesized corpus', () => {
  it('is real signed commits that stock @skyware/firehose decodes into the intended mix', async () => {
    const stats = {} as SynthStats
    Object.assign(stats, {
      frames: 0,
      commits: 0,
      likes: 0,
      reposts: 0,
      replies: 0,
      quotes: 0,
      replyQuotes: 0,
      deletes: 0,
      relikes: 0,
      identities: 0,
    })
    const frames: CorpusFrame[] = []
    const keys = new Map<string, string>()
    const opts = {
      commits: 400,
      repos: 20,
      seed: 7,
      onRepo: (did: string, key: string) => keys.set(did, key),
    }
    for await (const f of synthesizeFrames(opts, stats)) frames.push(f)
    expect(frames.length).toBe(20 * 2 + 400)
    expect(frames.map((f) => f.seq)).toEqual(frames.map((_, i) => i + 1))

    const ref = await referenceEvents(frames)
    expect(ref.errors).toBe(0)
    expect(ref.commits).toBe(420)
    const count = (pred: (e: (typeof ref.events)[number]) => boolean) =>
      ref.events.filter(pred).length
    // Self-interactions are dropped by core, so the event counts are at most the commit counts.
    const likes = count((e) => e.type === 'create' && e.kind === 'like')
    expect(likes).toBeGreaterThan(0.8 * (stats.likes + stats.relikes))
    expect(likes).toBeLessThanOrEqual(stats.likes + stats.relikes)
    expect(count((e) => e.type === 'create' && e.kind === 'repost')).toBeGreaterThan(0)
    expect(count((e) => e.type === 'create' && e.kind === 'reply')).toBeGreaterThan(0)
    expect(count((e) => e.type === 'create' && e.kind === 'quote')).toBeGreaterThan(0)
    expect(count((e) => e.type === 'delete')).toBe(stats.deletes + stats.relikes)
    expect(count((e) => e.type === 'identity')).toBe(20)
    expect(stats.likes / stats.commits).toBeGreaterThan(0.6)

    // The CAR root of each frame is the commit block, signed by the repo's key.
    const commitFrames = frames.filter((f) => frameType(f.data) === '#commit').slice(-20)
    for (const f of commitFrames) {
      const [, rest] = decodeFirst(f.data)
      const body = decodeFirst(rest)[0] as { repo: string; blocks: { $bytes: string } }
      const car = await readCarWithRoot(fromBytes(body.blocks as never))
      const bytes = car.blocks.get(car.root)
      expect(bytes).toBeDefined()
      const commit = cborToLex(bytes as Uint8Array) as never as { did: string }
      expect(commit.did).toBe(body.repo)
      expect(await verifyCommitSig(commit as never, keys.get(body.repo) as string)).toBe(true)
    }
  }, 60_000)
})
