/**
 * A small deterministic PRNG (mulberry32), floats in [0, 1): the same seed gives the same stream, so a
 * failing randomized test can be run again as it was. Not for anything secret.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
