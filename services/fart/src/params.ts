import { createHash } from 'node:crypto'
import {
  DEFAULT_WEIGHTS,
  type Direction,
  type KindCounts,
  type Weights,
} from '@circles/interaction-index'

// Query parameters of the circle routes, parsed after the route schema has checked their shape. The
// canonical form of the parsed values names the cache entry, so `weights=like:1,reply:3` and
// `weights=reply:3,like:1` share one.

// The index's own types: a direction and the weights are passed to it as they are parsed here.
export type { Direction, KindCounts, Weights }
export const KINDS = ['like', 'repost', 'reply', 'quote'] as const

/** Default weights (interaction-index: why 1/2/3/3); `nolikes=true` sets like to 0. */
export { DEFAULT_WEIGHTS }
/** Twitter circles' 8/15/26: 49 people, which still draws legibly as avatars. */
export const DEFAULT_RINGS = [8, 15, 26] as const
export const MAX_RINGS = 5
export const MAX_RING_SIZE = 50
export const MAX_MEMBERS = 100
export const DEFAULT_WINDOW = '48h'

export const WINDOW_PATTERN = '^(?:[1-9]|[1-3][0-9]|4[0-8])h$|^(?:7|30|90)d$'
export const WEIGHTS_PATTERN =
  '^(?:(?:like|repost|reply|quote):(?:[0-9]{1,3})(?:\\.[0-9]{1,2})?)(?:,(?:like|repost|reply|quote):(?:[0-9]{1,3})(?:\\.[0-9]{1,2})?){0,3}$'
export const RINGS_PATTERN = '^[0-9]{1,2}(?:,[0-9]{1,2}){0,4}$'

export class ParamError extends Error {
  override name = 'ParamError'
}

export interface Window {
  /** Canonical text, e.g. `48h` or `30d`. */
  text: string
  /** Set for the live index (1..48). */
  hours?: number
  /** Set for the daily aggregates (7, 30, 90). */
  days?: number
}

export function parseWindow(text: string | undefined): Window {
  const t = text ?? DEFAULT_WINDOW
  if (!new RegExp(WINDOW_PATTERN).test(t)) {
    throw new ParamError('window must be 1h to 48h, or 7d, 30d or 90d')
  }
  const n = Number(t.slice(0, -1))
  return t.endsWith('h') ? { text: `${n}h`, hours: n } : { text: `${n}d`, days: n }
}

export function parseWeights(text: string | undefined, noLikes: boolean | undefined): Weights {
  const w: Weights = { ...DEFAULT_WEIGHTS }
  if (text !== undefined && text !== '') {
    if (!new RegExp(WEIGHTS_PATTERN).test(text)) {
      throw new ParamError('weights must look like reply:3,quote:3,repost:2,like:1 (0 to 999)')
    }
    for (const part of text.split(',')) {
      const [k, v] = part.split(':') as [keyof Weights, string]
      w[k] = Number(v)
    }
  }
  if (noLikes) w.like = 0
  if (KINDS.every((k) => w[k] === 0)) throw new ParamError('weights must not all be 0')
  return w
}

export function parseRings(text: string | undefined): number[] {
  if (text === undefined || text === '') return [...DEFAULT_RINGS]
  if (!new RegExp(RINGS_PATTERN).test(text)) {
    throw new ParamError(`rings must be 1 to ${MAX_RINGS} comma-separated sizes, e.g. 8,15,26`)
  }
  const rings = text.split(',').map(Number)
  if (rings.some((r) => r < 1 || r > MAX_RING_SIZE)) {
    throw new ParamError(`rings: each ring holds 1 to ${MAX_RING_SIZE} people`)
  }
  if (rings.reduce((a, b) => a + b, 0) > MAX_MEMBERS) {
    throw new ParamError(`rings hold at most ${MAX_MEMBERS} people in total`)
  }
  return rings
}

export interface CircleParams {
  window: Window
  direction: Direction
  weights: Weights
  rings: number[]
}

/** A short hex digest naming this parameter set in cache keys. */
export function variantOf(p: CircleParams): string {
  const canon = `${p.window.text}|${p.direction}|${KINDS.map((k) => p.weights[k]).join(',')}|${p.rings.join(',')}`
  return createHash('sha1').update(canon).digest('hex').slice(0, 16)
}
