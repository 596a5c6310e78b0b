import { prng } from '@circles/testkit'
import { describe, expect, it } from 'vitest'
import { CODE_DELETED, CODE_UNKNOWN, RECORD_SIZE } from '../layout.js'
import { addCount, aggregateLogs, kthLargest } from './aggregate.js'

describe('kthLargest', () => {
  it('agrees with sorting, ties and all', () => {
    const rand = prng(1)
    for (const n of [1, 2, 3, 10, 100, 5000]) {
      // few distinct values (many ties, as with interaction counts), then all distinct
      for (const distinct of [3, 1e9]) {
        const values = Float64Array.from({ length: n }, () => Math.floor(rand() * distinct))
        const sorted = values.slice().sort()
        for (const k of [1, 2, Math.ceil(n / 2), n]) {
          if (k > n) continue
          expect(kthLargest(values, k)).toBe(sorted[n - k])
        }
      }
    }
  })

  it('leaves its input alone', () => {
    const values = Float64Array.from([3, 1, 2])
    kthLargest(values, 2)
    expect([...values]).toEqual([3, 1, 2])
  })
})

describe('aggregateLogs', () => {
  const rand = prng(7)
  const byte = () => Math.floor(rand() * 256)

  /** A log with a `header`-byte header and `count` random records among `ids`, some deleted or unknown. */
  function makeLog(header: number, count: number, ids: Buffer[], secs: number[]): Buffer {
    const log = Buffer.alloc(header + count * RECORD_SIZE)
    for (let r = 0; r < count; r++) {
      const off = header + r * RECORD_SIZE
      for (let i = 0; i < 8; i++) log[off + i] = byte()
      const flags = rand() < 0.1 ? CODE_DELETED : rand() < 0.05 ? CODE_UNKNOWN : 0
      log[off + 8] = Math.floor(rand() * 8) | flags
      ;(ids[Math.floor(rand() * rand() * ids.length)] as Buffer).copy(log, off + 9)
      log.writeUInt32BE(secs[Math.floor(rand() * secs.length)] as number, off + 17)
      log.writeUInt16BE(Math.floor(rand() * 300), off + 21)
    }
    return log
  }

  /** The same counts the obvious way: id (hex) -> 8 counts. */
  function naive(logs: (Buffer | null)[], minSec: number, maxSec: number): Map<string, number[]> {
    const out = new Map<string, number[]>()
    for (const log of logs) {
      if (!log) continue
      for (let off = log.length % RECORD_SIZE; off < log.length; off += RECORD_SIZE) {
        const code = log[off + 8] as number
        const sec = log.readUInt32BE(off + 17)
        if (code & (CODE_DELETED | CODE_UNKNOWN) || sec < minSec || sec >= maxSec) continue
        const id = log.toString('hex', off + 9, off + 17)
        const c = out.get(id) ?? new Array(8).fill(0)
        c[code & 7]++
        out.set(id, c)
      }
    }
    return out
  }

  it('counts what a plain scan counts, across logs, headers, deletes, the window edges and added counts', () => {
    // ids with the top bit set or not in both halves (int32 halves go negative), times past 2^31 (2038)
    for (const base of [1_790_000_000, 2 ** 31 - 3600, 2 ** 32 - 4 * 3600]) {
      const minSec = base
      const maxSec = base + 3 * 3600
      const secs = [minSec - 1, minSec, minSec + 5000, maxSec - 1, maxSec, maxSec + 100]
      for (const partners of [1, 5, 300, 5000]) {
        const ids = Array.from({ length: partners }, () =>
          Buffer.from(Array.from({ length: 8 }, byte)),
        )
        const logs = [
          makeLog(20, Math.floor(rand() * 400), ids, secs),
          null,
          makeLog(12, 3000, ids, secs),
          makeLog(8, 2, ids, secs),
          makeLog(20, 0, ids, secs),
          makeLog(20, 9000, ids, secs),
        ]
        const g = aggregateLogs(logs, minSec, maxSec)
        // Counts added from elsewhere (day blobs) on top, some for partners the logs have, most new: the
        // table and its index grow under them.
        const want = naive(logs, minSec, maxSec)
        for (let j = 0; j < 3 * partners; j++) {
          const id =
            j % 3 === 0
              ? (ids[j % ids.length] as Buffer)
              : Buffer.from(Array.from({ length: 8 }, byte))
          const code = Math.floor(rand() * 8)
          const count = 1 + Math.floor(rand() * 500)
          addCount(g, id.readInt32BE(0), id.readInt32BE(4), code, count)
          const c = want.get(id.toString('hex')) ?? new Array(8).fill(0)
          c[code] += count
          want.set(id.toString('hex'), c)
        }
        const { n, slots } = g
        const got = new Map<string, number[]>()
        for (let i = 0; i < n; i++) {
          const p = i * 11
          const id = Buffer.alloc(8)
          id.writeInt32BE(slots[p] as number, 0)
          id.writeInt32BE(slots[p + 1] as number, 4)
          const c = [...slots.subarray(p + 3, p + 11)]
          expect(slots[p + 2]).toBe(c.reduce((a, b) => a + b, 0))
          got.set(id.toString('hex'), c)
        }
        expect(got).toEqual(want)
      }
    }
  })
})

describe('addCount', () => {
  it('fills an aggregate of no logs at all', () => {
    const g = aggregateLogs([null, null], 0, 3600)
    for (let i = 0; i < 1000; i++) addCount(g, i, -i, i % 8, 2)
    addCount(g, 5, -5, 0, 1)
    expect(g.n).toBe(1000)
    // partner 5: 2 of code 5 and 1 of code 0: total 3
    expect([...g.slots.subarray(5 * 11, 6 * 11)]).toEqual([5, -5, 3, 1, 0, 0, 0, 0, 2, 0, 0])
  })
})
