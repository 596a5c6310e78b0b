// Text and dates read from UTF-8 bytes, for `readFields` (interaction-fields.ts).

/** Whether `buf[at, at + len)` holds a byte past ASCII. */
export function hasHighByte(buf: Uint8Array, at: number, len: number): boolean {
  for (let i = at; i < at + len; i++) if ((buf[i] as number) >= 0x80) return true
  return false
}

/**
 * The ms of `YYYY-MM-DDTHH:MM:SS.sssZ` at `buf[at]` (24 bytes) with every field in range (so that
 * `Date.UTC` of it is `Date.parse` of it); NaN for anything else, which `Date.parse` is left to read.
 */
export function isoMs(buf: Uint8Array, at: number): number {
  if (buf[at + 4] !== 0x2d || buf[at + 7] !== 0x2d || buf[at + 10] !== 0x54) return Number.NaN
  if (buf[at + 13] !== 0x3a || buf[at + 16] !== 0x3a || buf[at + 19] !== 0x2e) return Number.NaN
  if (buf[at + 23] !== 0x5a) return Number.NaN
  const year = digits(buf, at, 4)
  const month = digits(buf, at + 5, 2)
  const day = digits(buf, at + 8, 2)
  const hour = digits(buf, at + 11, 2)
  const minute = digits(buf, at + 14, 2)
  const second = digits(buf, at + 17, 2)
  const ms = digits(buf, at + 20, 3)
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > 28 || hour > 23) return Number.NaN
  if (minute > 59 || second > 59 || ms < 0) return Number.NaN
  return Date.UTC(year, month - 1, day, hour, minute, second, ms)
}

/** The decimal number of `n` digits at `at`; -1 when one is not a digit. */
function digits(buf: Uint8Array, at: number, n: number): number {
  let v = 0
  for (let i = at; i < at + n; i++) {
    const d = (buf[i] as number) - 0x30
    if (d < 0 || d > 9) return -1
    v = v * 10 + d
  }
  return v
}

/**
 * Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF), and no U+FFFD: the whole
 * decode sends text holding one to lex-cbor, which may read broken bytes otherwise.
 */
export function validUtf8(buf: Uint8Array, at: number, len: number): boolean {
  const end = at + len
  for (let i = at; i < end; ) {
    const b = buf[i] as number
    if (b < 0x80) {
      i++
      continue
    }
    let need: number
    let lo = 0x80
    let hi = 0xbf
    if (b >= 0xc2 && b <= 0xdf) need = 1
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2
      if (b === 0xe0) lo = 0xa0
      else if (b === 0xed) hi = 0x9f
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3
      if (b === 0xf0) lo = 0x90
      else if (b === 0xf4) hi = 0x8f
    } else return false
    if (i + need >= end) return false
    const c1 = buf[i + 1] as number
    if (c1 < lo || c1 > hi) return false
    for (let j = 2; j <= need; j++) {
      const c = buf[i + j] as number
      if (c < 0x80 || c > 0xbf) return false
    }
    if (b === 0xef && c1 === 0xbf && buf[i + 2] === 0xbd) return false
    i += need + 1
  }
  return true
}
