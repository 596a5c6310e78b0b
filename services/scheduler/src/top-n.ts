import type { Ranked } from './stats.js'

function better(a: Ranked, b: Ranked): boolean {
  return a.count > b.count || (a.count === b.count && a.did < b.did)
}

/** Top N by a bounded min-heap: O(accounts log N), no sort of millions of entries. */
export function topN(
  accounts: number,
  countOf: (id: number) => number,
  didOf: (id: number) => string,
  limit: number,
): Ranked[] {
  const heap: Ranked[] = [] // heap[0] is the worst of the kept ones
  const worse = (i: number, j: number) => better(heap[j] as Ranked, heap[i] as Ranked)
  const swap = (i: number, j: number) => {
    const t = heap[i] as Ranked
    heap[i] = heap[j] as Ranked
    heap[j] = t
  }
  for (let id = 0; id < accounts; id++) {
    const count = countOf(id)
    if (count <= 0) continue
    if (heap.length === limit) {
      const worst = heap[0] as Ranked
      // Cheap reject before building a DID string comparison.
      if (count < worst.count) continue
      const item = { did: didOf(id), count }
      if (!better(item, worst)) continue
      heap[0] = item
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < heap.length && worse(l, m)) m = l
        if (r < heap.length && worse(r, m)) m = r
        if (m === i) break
        swap(i, m)
        i = m
      }
    } else if (limit > 0) {
      heap.push({ did: didOf(id), count })
      let i = heap.length - 1
      while (i > 0) {
        const p = (i - 1) >> 1
        if (!worse(i, p)) break
        swap(i, p)
        i = p
      }
    }
  }
  return heap.sort((a, b) => (better(a, b) ? -1 : better(b, a) ? 1 : 0))
}
