import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { frameType, readCorpus } from '../src/corpus.js'
import { referenceEvents } from '../src/reference.js'
import type { ExpectedEvent } from '../src/simulator.js'

const corpusUrl = new URL('../corpus/small.bin.gz', import.meta.url)
const expectedUrl = new URL('../corpus/small.expected.json', import.meta.url)

function keyOf(e: { type: string } & Record<string, unknown>): string {
  if (e.type === 'create') return `create ${e.kind} ${e.author} ${e.subject} ${e.rkey}`
  if (e.type === 'delete') return `delete ${e.record} ${e.author} ${e.rkey}`
  return `${e.type} ${e.did} ${e.handle}`
}

describe('the checked-in corpus recorded from a local PDS', () => {
  it('decodes with stock @skyware/firehose into exactly the interactions the simulator performed', async () => {
    const frames = await readCorpus(corpusUrl.pathname)
    const expected = JSON.parse(await readFile(expectedUrl, 'utf8')) as ExpectedEvent[]
    const types = new Set(frames.map((f) => frameType(f.data)))
    expect([...types].sort()).toEqual(['#account', '#commit', '#identity', '#sync'])
    // seqs strictly increase: the replay server relies on it for ?cursor=
    for (let i = 1; i < frames.length; i++) {
      expect((frames[i] as { seq: number }).seq).toBeGreaterThan(
        (frames[i - 1] as { seq: number }).seq,
      )
    }

    const ref = await referenceEvents(frames)
    expect(ref.errors).toBe(0)
    const got = ref.events
      .filter((e) => e.type === 'create' || e.type === 'delete')
      .map((e) => keyOf(e as never))
      .sort()
    const want = expected
      .filter((e) => e.type === 'create' || e.type === 'delete')
      .map((e) => keyOf(e as never))
      .sort()
    expect(got).toEqual(want)
    const identities = new Set(
      ref.events.filter((e) => e.type === 'identity').map((e) => keyOf(e as never)),
    )
    for (const e of expected.filter((x) => x.type === 'identity'))
      expect(identities).toContain(keyOf(e as never))
  })
})
