import { didId } from '@circles/interaction-index'
import { describe, expect, it } from 'vitest'
import {
  dayBlobMark,
  encodeDayBlob,
  forEachPackedRecord,
  LongTermCodecError,
  mergeDayBlob,
  type PackedRecord,
  recordSize,
} from './day-blob.js'
import { sumDayBlobs } from './read.js'

const A = didId('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa')
const B = didId('did:web:example.com')

function decode(blob: Buffer): { kind: number; partner: string; count: number }[] {
  const out: { kind: number; partner: string; count: number }[] = []
  forEachPackedRecord(blob, (r) =>
    out.push({ kind: r.kind, partner: r.partner.toString('hex'), count: r.count }),
  )
  return out
}

describe('long-term day blobs', () => {
  it('round-trips records, small counts in the head byte and large ones as varints', () => {
    const records: PackedRecord[] = [
      { kind: 0, partner: A, count: 1 },
      { kind: 3, partner: B, count: 63 },
      { kind: 2, partner: A, count: 64 },
      { kind: 1, partner: B, count: 3_000_000 },
    ]
    const blob = encodeDayBlob(7, records)
    expect(blob.length).toBe(1 + records.reduce((n, r) => n + recordSize(r), 0))
    expect(recordSize(records[0] as PackedRecord)).toBe(9)
    expect(dayBlobMark(blob)).toBe(7)
    expect(decode(blob)).toEqual(
      records.map((r) => ({ kind: r.kind, partner: r.partner.toString('hex'), count: r.count })),
    )
  })

  it('merges per (partner, kind) and moves the mark', () => {
    const old = encodeDayBlob(3, [
      { kind: 0, partner: A, count: 2 },
      { kind: 1, partner: A, count: 1 },
    ])
    const merged = mergeDayBlob(old, 5, [
      { kind: 0, partner: A, count: 70 },
      { kind: 0, partner: B, count: 1 },
    ])
    expect(dayBlobMark(merged)).toBe(5)
    expect(
      decode(merged).sort((x, y) => x.kind - y.kind || x.partner.localeCompare(y.partner)),
    ).toEqual(
      [
        { kind: 0, partner: A.toString('hex'), count: 72 },
        { kind: 0, partner: B.toString('hex'), count: 1 },
        { kind: 1, partner: A.toString('hex'), count: 1 },
      ].sort((x, y) => x.kind - y.kind || x.partner.localeCompare(y.partner)),
    )
  })

  it('sums only the days asked for', () => {
    const blob = (n: number) => encodeDayBlob(1, [{ kind: 2, partner: A, count: n }])
    const sums = sumDayBlobs(
      { '100': blob(1), '101': blob(10), '102': blob(100), x: blob(5) },
      101,
      102,
    )
    expect(sums.get(A.toString('latin1'))).toEqual({ like: 0, repost: 0, reply: 110, quote: 0 })
  })

  it('rejects a truncated blob', () => {
    const blob = encodeDayBlob(1, [{ kind: 0, partner: A, count: 1 }])
    expect(() => forEachPackedRecord(blob.subarray(0, 5), () => {})).toThrow(LongTermCodecError)
  })
})
