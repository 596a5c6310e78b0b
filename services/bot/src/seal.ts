import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

// The session tokens rest in Redis sealed with AES-256-GCM: whoever reads Redis (a dump, a replica, a
// MONITOR) does not get a token that can post as the bot. The key comes from the environment only.
// Layout: version byte 1, 12-byte IV, 16-byte tag, ciphertext; base64 in Redis.

const VERSION = 1

export class SealError extends Error {
  override name = 'SealError'
}

/** Seals `plain` under `key` (32 bytes); `aad` binds it to its place (the bot's DID), so it cannot be moved. */
export function seal(key: Buffer, plain: string, aad: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(aad))
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
  return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), body]).toString('base64')
}

/** Opens what `seal` made; a wrong key, a wrong `aad` or altered bytes throw a SealError. */
export function open(key: Buffer, sealed: string, aad: string): string {
  const bytes = Buffer.from(sealed, 'base64')
  if (bytes.length < 29 || bytes[0] !== VERSION) throw new SealError('not a sealed session')
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(1, 13))
    decipher.setAAD(Buffer.from(aad))
    decipher.setAuthTag(bytes.subarray(13, 29))
    return Buffer.concat([decipher.update(bytes.subarray(29)), decipher.final()]).toString('utf8')
  } catch (cause) {
    throw new SealError('the session does not open with BOT_SESSION_KEY', { cause })
  }
}
