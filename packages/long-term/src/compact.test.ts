import { prng } from '@circles/testkit'
import { describe, expect, it } from 'vitest'
import {
  dayBlobMark,
  encodeDayBlob,
  encodePlainDayBlob,
  forEachPackedRecord,
  forEachRecordAt,
  isCompactDayBlob,
  mergeDayBlob,
  type PackedRecord,
  plainDayBlob,
} from './day-blob.js'
import { sumDayBlobs } from './read.js'

// Property tests of the compact layout against the plain one on random days: every reader sees the same
// (partner, kind) sums from a compact blob as from the plain blob of the same records, a merge into a
// plain blob (what a fold meets in a Redis written before the change) gives what a merge into its compact
// twin gives.

/** Sums by (partner hex, kind): what every reader makes of a blob. */
function sums(blob: Buffer): Map<string, number> {
  const out = new Map<string, number>()
  forEachPackedRecord(blob, (r) => {
    const key = `${r.partner.toString('hex')}/${r.kind}`
    out.set(key, (out.get(key) ?? 0) + r.count)
  })
  return new Map([...out].sort())
}

function sumsInPlace(blob: Buffer): Map<string, number> {
  const out = new Map<string, number>()
  forEachRecordAt(blob, (kind, count, at, ids) => {
    const key = `${ids.toString('hex', at, at + 8)}/${kind}`
    out.set(key, (out.get(key) ?? 0) + count)
  })
  return new Map([...out].sort())
}

/** A random day: `partners` partners from a pool of random ids (some sharing their top bytes), 1-4 kinds. */
function randomRecords(rand: () => number, partners: number): PackedRecord[] {
  const out: PackedRecord[] = []
  const near = Buffer.alloc(8)
  for (let p = 0; p < partners; p++) {
    const id = Buffer.alloc(8)
    for (let b = 0; b < 8; b++) id[b] = Math.floor(rand() * 256)
    // now and then the next id close to the last: top bytes equal or one apart, as in dense blobs
    if (rand() < 0.2) {
      near.copy(id, 0, 0, 2)
      id[1] = ((id[1] as number) + Math.floor(rand() * 3)) & 0xff
    }
    id.copy(near)
    for (let k = 0; k < 4; k++) {
      if (k > 0 && rand() < 0.7) continue
      const big = rand() < 0.1
      const count = big ? 1 + Math.floor(rand() ** 3 * 5_000_000) : rand() < 0.8 ? 1 : 2
      out.push({ kind: k, partner: id, count })
      // a (partner, kind) given twice now and then: summed
      if (rand() < 0.02) out.push({ kind: k, partner: id, count: 3 })
    }
  }
  // any order
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[out[i], out[j]] = [out[j] as PackedRecord, out[i] as PackedRecord]
  }
  return out
}

const SIZES = [0, 1, 2, 5, 30, 200, 3000, 6000]

describe('compact day blobs against plain ones', () => {
  it('read the same as the plain blob of the same records, whatever the size', () => {
    const rand = prng(11)
    for (const n of SIZES) {
      for (let round = 0; round < (n > 1000 ? 2 : 20); round++) {
        const records = randomRecords(rand, n)
        const mark = Math.floor(rand() * 25)
        const plain = encodePlainDayBlob(mark, records)
        const compact = encodeDayBlob(mark, records)
        expect(isCompactDayBlob(compact)).toBe(true)
        expect(isCompactDayBlob(plain)).toBe(false)
        expect(dayBlobMark(compact)).toBe(mark)
        expect(sums(compact)).toEqual(sums(plain))
        expect(sumsInPlace(compact)).toEqual(sums(plain))
        expect(sumsInPlace(plain)).toEqual(sums(plain))
        expect(sums(plainDayBlob(compact))).toEqual(sums(plain))
        expect(dayBlobMark(plainDayBlob(compact))).toBe(mark)
        // larger only by a count byte per partner of one kind counted 2..63 (plain packs it in the head)
        expect(compact.length).toBeLessThanOrEqual(plain.length + n)
        // re-encoding what was decoded gives the same bytes: one form per set of records
        const again: PackedRecord[] = []
        forEachPackedRecord(compact, (r) => again.push(r))
        expect(encodeDayBlob(mark, again).equals(compact)).toBe(true)
      }
    }
  })

  it('merges into a plain blob as into its compact twin', () => {
    const rand = prng(12)
    for (const n of SIZES.slice(0, 7)) {
      for (let round = 0; round < 10; round++) {
        const before = randomRecords(rand, n)
        const hour = randomRecords(rand, Math.ceil(n / 2))
        // the hour's partners partly the day's: take some of its ids
        hour.forEach((r, i) => {
          if (i < before.length && rand() < 0.5) r.partner = (before[i] as PackedRecord).partner
        })
        const fromPlain = mergeDayBlob(encodePlainDayBlob(3, before), 4, hour)
        const fromCompact = mergeDayBlob(encodeDayBlob(3, before), 4, hour)
        expect(fromPlain.equals(fromCompact)).toBe(true)
        expect(dayBlobMark(fromPlain)).toBe(4)
        expect(sums(fromPlain)).toEqual(sums(encodePlainDayBlob(4, [...before, ...hour])))
      }
    }
  })

  it('sums days of both layouts as it sums plain ones', () => {
    const rand = prng(13)
    const days = Array.from({ length: 12 }, () => randomRecords(rand, 40))
    const plain: Record<string, Buffer> = {}
    const mixed: Record<string, Buffer> = {}
    days.forEach((records, d) => {
      plain[String(100 + d)] = encodePlainDayBlob(24, records)
      mixed[String(100 + d)] = (d % 2 ? encodeDayBlob : encodePlainDayBlob)(24, records)
    })
    const a = sumDayBlobs(plain, 102, 109)
    const b = sumDayBlobs(mixed, 102, 109)
    expect(new Map([...b].sort())).toEqual(new Map([...a].sort()))
    expect(a.size).toBeGreaterThan(100)
  })

  it('shares top bytes in dense blobs: under 7.5 bytes per record for 20,000 partners of one kind', () => {
    const rand = prng(14)
    const records: PackedRecord[] = []
    for (let p = 0; p < 20_000; p++) {
      const id = Buffer.alloc(8)
      for (let b = 0; b < 8; b++) id[b] = Math.floor(rand() * 256)
      records.push({ kind: 0, partner: id, count: 1 })
    }
    const blob = encodeDayBlob(1, records)
    // level 2: a head and 6 bytes for most partners, 9 where the top 2 bytes jump by 7 or more (plain: 9)
    expect(blob[0] as number).toBe(0x80 | (2 << 5) | 1)
    expect(blob.length).toBeLessThan(7.5 * 20_000)
  })
})
