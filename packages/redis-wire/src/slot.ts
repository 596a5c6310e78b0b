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
  const bytes = Buffer.from(key)
  return keySlotOf(bytes, 0, bytes.length)
}

/** `keySlot` of the key in `buf` from `start` to `end` (a key inside a RESP frame, not copied out). */
export function keySlotOf(buf: Uint8Array, start: number, end: number): number {
  let from = start
  let to = end
  const open = buf.indexOf(0x7b, start)
  if (open >= 0 && open < end) {
    const close = buf.indexOf(0x7d, open + 1)
    if (close > open + 1 && close < end) {
      from = open + 1
      to = close
    }
  }
  let crc = 0
  for (let i = from; i < to; i++)
    crc = ((crc << 8) & 0xffff) ^ (TABLE[(crc >> 8) ^ (buf[i] as number)] as number)
  return crc & 16383
}
