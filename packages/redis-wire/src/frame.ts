// Commands encoded as RESP straight into one buffer: no object per command or argument, keys encoded once
// and copied in as bytes (why it matters: wire.ts).

const CRLF = 0x0d0a

/** RESP commands written into one growing buffer. */
export class Frame {
  buf: Buffer
  at = 0
  /** Commands written (the replies to expect). */
  commands = 0

  constructor(size = 1 << 16) {
    this.buf = Buffer.allocUnsafe(size)
  }

  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.at + n <= this.buf.length) return
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n))
    this.buf.copy(bigger, 0, 0, this.at)
    this.buf = bigger
  }

  /** `<type><n>\r\n`: an array or bulk header. */
  private head(type: number, n: number): void {
    this.ensure(24)
    const buf = this.buf
    buf[this.at++] = type
    this.digits(n)
    buf.writeUInt16BE(CRLF, this.at)
    this.at += 2
  }

  /** A non-negative integer in decimal (room for it ensured by the caller). */
  private digits(n: number): void {
    const buf = this.buf
    let end = this.at + 1
    for (let x = n; x >= 10; x = Math.floor(x / 10)) end++
    for (let i = end - 1, x = n; i >= this.at; i--, x = Math.floor(x / 10)) buf[i] = 48 + (x % 10)
    this.at = end
  }

  /** Starts a command of `argc` arguments (the arguments follow). */
  command(argc: number): void {
    this.commands++
    this.head(0x2a, argc)
  }

  /** A bulk string argument. */
  bulk(s: string): void {
    const len = Buffer.byteLength(s)
    this.head(0x24, len)
    this.ensure(len + 2)
    this.at += this.buf.write(s, this.at)
    this.buf.writeUInt16BE(CRLF, this.at)
    this.at += 2
  }

  /** An integer argument. */
  int(n: number): void {
    this.bulk(String(n))
  }

  /** Bytes already in RESP (arguments encoded by `encodeBulk`). */
  raw(b: Buffer): void {
    this.ensure(b.length)
    this.copyIn(b)
  }

  /** A bulk string argument: `prefix` (latin1 bytes) followed by the decimal of `n` (a key with a number). */
  bulkWithNumber(prefix: Buffer, n: number): void {
    let len = prefix.length + 1
    for (let x = n; x >= 10; x = Math.floor(x / 10)) len++
    this.head(0x24, len)
    this.ensure(len + 26)
    this.copyIn(prefix)
    this.digits(n)
    this.buf.writeUInt16BE(CRLF, this.at)
    this.at += 2
  }

  private copyIn(b: Buffer): void {
    const buf = this.buf
    let at = this.at
    // a byte loop for a key: Buffer#copy and TypedArray#set cost more than they move for ~50 bytes
    if (b.length <= 128) for (let i = 0; i < b.length; i++) buf[at++] = b[i] as number
    else at += b.copy(buf, at)
    this.at = at
  }

  /** A bulk argument of `n` bytes that the caller writes at the returned offset (before the next write). */
  reserve(n: number): number {
    this.head(0x24, n)
    this.ensure(n + 2)
    const off = this.at
    this.buf.writeUInt16BE(CRLF, off + n)
    this.at += n + 2
    return off
  }

  /** A whole command. */
  call(...args: (string | number | Buffer)[]): void {
    this.command(args.length)
    for (const a of args) {
      if (typeof a === 'number') this.int(a)
      else if (typeof a === 'string') this.bulk(a)
      else {
        const off = this.reserve(a.length)
        a.copy(this.buf, off)
      }
    }
  }
}

/** Arguments in RESP, to be copied into frames with `Frame#raw`. */
export function encodeBulks(...args: string[]): Buffer {
  const f = new Frame(256)
  for (const a of args) f.bulk(a)
  return Buffer.from(f.buf.subarray(0, f.at))
}
