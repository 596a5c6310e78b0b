// Redis Cluster's key slot (CRC16/XMODEM of the hash tag, modulo 16384), computed in Node so that the
// writer can put the operations of every account that shares a slot into one script call.
const TABLE = new Uint16Array(256)
for (let i = 0; i < 256; i++) {
  let c = i << 8
  for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff
  TABLE[i] = c
}

/** The cluster slot of a key: only the part inside the first non-empty `{...}` counts, as in Redis. */
export function keySlot(key: string): number {
  let from = 0
  let to = key.length
  const open = key.indexOf('{')
  if (open >= 0) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) {
      from = open + 1
      to = close
    }
  }
  const bytes = Buffer.from(key.slice(from, to))
  let crc = 0
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ (TABLE[(crc >> 8) ^ b] as number)
  return crc & 16383
}
