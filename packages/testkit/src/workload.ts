import type { InteractionKind } from '@circles/core'
import { prng } from './prng.js'

// The benchmarks' synthetic workload (indexer, roll-up and API benches share it, so their figures describe
// the same distribution): a seeded PRNG, Zipf ranks, random did:plc identifiers, TIDs and the kind mix.

export interface WorkloadRandom {
  /** Uniform in [0, 1), deterministic for a seed. */
  rand(): number
  /** A sampler of ranks 0..n-1 with P(rank k) proportional to 1 / (k + 1)^s. */
  zipfSampler(n: number, s: number): () => number
  /** A random permutation of 0..n-1. */
  shuffled(n: number): Int32Array
  randomDid(): string
  /** like 72 %, repost 14 %, reply 11 %, quote 3 %. */
  pickKind(): InteractionKind
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
const S32 = '234567abcdefghijklmnopqrstuvwxyz'

/** One generator per run: every call draws from the same stream, so a run is reproducible from its seed. */
export function createWorkloadRandom(seed = 42): WorkloadRandom {
  const rand = prng(seed)
  return {
    rand,
    zipfSampler(n, s) {
      const cdf = new Float64Array(n)
      let sum = 0
      for (let i = 0; i < n; i++) {
        sum += 1 / (i + 1) ** s
        cdf[i] = sum
      }
      return () => {
        const x = rand() * sum
        let lo = 0
        let hi = n - 1
        while (lo < hi) {
          const mid = (lo + hi) >> 1
          if ((cdf[mid] as number) < x) lo = mid + 1
          else hi = mid
        }
        return lo
      }
    },
    shuffled(n) {
      const p = new Int32Array(n)
      for (let i = 0; i < n; i++) p[i] = i
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1))
        const t = p[i] as number
        p[i] = p[j] as number
        p[j] = t
      }
      return p
    },
    randomDid() {
      let s = 'did:plc:'
      for (let i = 0; i < 24; i++) s += B32[Math.floor(rand() * 32)]
      return s
    },
    pickKind() {
      const x = rand()
      return x < 0.72 ? 'like' : x < 0.86 ? 'repost' : x < 0.97 ? 'reply' : 'quote'
    },
  }
}

/** A TID from microseconds and a clock id (the generators make microseconds unique per event). */
export function tidFromMicros(micros: number, clockId: number): string {
  let n = (BigInt(micros) << 10n) | BigInt(clockId)
  let out = ''
  for (let i = 0; i < 13; i++) {
    out = S32.charAt(Number(n & 31n)) + out
    n >>= 5n
  }
  return out
}
