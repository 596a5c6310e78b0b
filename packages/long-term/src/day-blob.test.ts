import { didId } from '@circles/interaction-index'
import { describe, expect, it } from 'vitest'
import {
  dayBlobMark,
  encodeDayBlob,
  encodeDayBlobRows,
  encodePlainDayBlob,
  forEachPackedRecord,
  forEachRecordAt,
  isCompactDayBlob,
  LongTermCodecError,
  markOfHour,
  mergeDayBlob,
  type PackedRecord,
  plainDayBlob,
  recordSize,
} from './day-blob.js'
import { sumDayBlobs } from './read.js'

const A = didId('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa')
const B = didId('did:web:example.com')

type Plain = { kind: number; partner: string; count: number }

/** Records in a compact blob's order: partner id, then kind. */
function sorted(list: Plain[]): Plain[] {
  return [...list].sort((x, y) => x.partner.localeCompare(y.partner) || x.kind - y.kind)
}

function decode(blob: Buffer): Plain[] {
  const out: Plain[] = []
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
    const plain = encodePlainDayBlob(7, records)
    expect(plain.length).toBe(1 + records.reduce((n, r) => n + recordSize(r), 0))
    expect(recordSize(records[0] as PackedRecord)).toBe(9)
    expect(dayBlobMark(plain)).toBe(7)
    const expected = records.map((r) => ({
      kind: r.kind,
      partner: r.partner.toString('hex'),
      count: r.count,
    }))
    expect(decode(plain)).toEqual(expected)
    // compact: each partner once (A then B: A's id is the smaller), its kinds in order
    const blob = encodeDayBlob(7, records)
    expect(isCompactDayBlob(blob) && !isCompactDayBlob(plain)).toBe(true)
    expect(dayBlobMark(blob)).toBe(7)
    expect(decode(blob)).toEqual(sorted(expected))
    // mark, then head, counts (varints: 3,000,000 takes 4 bytes) and 8-byte id: A 1 + 2 + 8, B 1 + 5 + 8
    expect(blob.length).toBe(26)
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

  it('encodes rows held in columns to the same bytes as records', () => {
    const ids = Buffer.concat([A, B, didId('did:plc:cccccccccccccccccccccccc')])
    // rows 0..5; the blob takes rows 4, 1, 5, 2 in that order
    const kind = Uint8Array.from([0, 1, 2, 3, 0, 2])
    const count = Uint32Array.from([5, 63, 64, 127, 128, 3_000_000])
    const partner = Int32Array.from([0, 1, 2, 0, 1, 2])
    const order = Int32Array.from([3, 4, 1, 5, 2, 0])
    const blob = encodeDayBlobRows(9, { kind, count, partner, ids }, order, 1, 5)
    const records = [4, 1, 5, 2].map((row) => ({
      kind: kind[row] as number,
      count: count[row] as number,
      partner: ids.subarray(8 * (partner[row] as number), 8 * (partner[row] as number) + 8),
    }))
    expect(blob.equals(encodeDayBlob(9, records))).toBe(true)
    // rows 5 and 2 are the same (partner, kind): one record of their sum
    expect(decode(blob)).toHaveLength(3)
    expect(decode(blob).find((r) => r.kind === 2)?.count).toBe(3_000_064)
    expect(encodeDayBlobRows(3, { kind, count, partner, ids }, order, 2, 2)).toEqual(
      Buffer.from([0x80 | 3]),
    )
  })

  it('marks a fold of an hour with 1 + its hour of the day', () => {
    const day = 20_000
    expect(markOfHour(day * 24)).toBe(1)
    expect(markOfHour(day * 24 + 23)).toBe(24)
    expect(dayBlobMark(encodeDayBlob(markOfHour(day * 24 + 5), []))).toBe(6)
  })

  it('rejects a truncated blob', () => {
    for (const blob of [
      encodeDayBlob(1, [{ kind: 0, partner: A, count: 1 }]),
      encodePlainDayBlob(1, [{ kind: 0, partner: A, count: 1 }]),
    ]) {
      expect(() => forEachPackedRecord(blob.subarray(0, 5), () => {})).toThrow(LongTermCodecError)
      expect(() => forEachRecordAt(blob.subarray(0, 5), () => {})).toThrow(LongTermCodecError)
    }
  })

  it('reads the same records in place as forEachPackedRecord does', () => {
    const records: PackedRecord[] = [
      { kind: 3, partner: B, count: 63 },
      { kind: 1, partner: A, count: 3_000_000 },
      { kind: 0, partner: B, count: 64 },
    ]
    for (const blob of [encodeDayBlob(2, records), encodePlainDayBlob(2, records)]) {
      const seen: Plain[] = []
      forEachRecordAt(blob, (kind, count, at, ids) =>
        seen.push({ kind, partner: ids.toString('hex', at, at + 8), count }),
      )
      expect(seen).toEqual(decode(blob))
      expect(decode(plainDayBlob(blob))).toEqual(decode(blob))
      expect(dayBlobMark(plainDayBlob(blob))).toBe(2)
    }
  })
})
