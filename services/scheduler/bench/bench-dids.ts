// What the forget and sweep benches share: numbered DIDs and a progress line.

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

/** A valid did:plc per number (its base-32 digits in the DID alphabet). */
export function numberedDid(i: number): string {
  let s = ''
  for (let v = i; s.length < 24; v = Math.floor(v / 32)) s = B32[v % 32] + s
  return `did:plc:${s}`
}

/** A progress line writer for the bench called `name`. */
export function progressOf(name: string): (msg: string) => void {
  return (msg) => process.stdout.write(`[${name}] ${new Date().toISOString()} ${msg}\n`)
}
