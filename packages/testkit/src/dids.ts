const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

/** A valid did:plc for a number (its base32 digits, padded to 24): distinct numbers, distinct DIDs. */
export function didOf(n: number): string {
  let s = ''
  let v = n
  do {
    s = B32[v % 32] + s
    v = Math.floor(v / 32)
  } while (v > 0)
  return `did:plc:${s.padStart(24, 'a')}`
}
