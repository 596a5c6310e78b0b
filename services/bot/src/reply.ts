import { createHash } from 'node:crypto'
import { tidFromMicros } from '@circles/core'
import type { CircleMember } from './circle-api.js'
import type { Command } from './command.js'
import type { BlobRef, StrongRef } from './pds-client.js'

// The reply's parts, pure: its record key, its text and alt text, the record itself.

export const POST = 'app.bsky.feed.post'

/** Hex digest of a mention's AT-URI: its reply state's key (`schema.botReply`). */
export function mentionDigest(uri: string): string {
  return createHash('sha256').update(uri).digest('hex').slice(0, 32)
}

/**
 * The reply's record key, the same for every attempt at one mention: a TID in the second of the mention
 * (so replies sort about like their mentions) whose microseconds and clock id come from a hash of its URI
 * (30 bits: two mentions in one second collide about once in a billion). A second createRecord with it
 * fails instead of posting twice.
 */
export function replyRkey(mentionUri: string, mentionMs: number): string {
  const h = createHash('sha256').update(mentionUri).digest()
  const micros = h.readUInt32BE(0) % 1_000_000
  const clockId = h.readUInt16BE(4) & 1023
  return tidFromMicros(Math.floor(mentionMs / 1000) * 1_000_000 + micros, clockId)
}

/** Width and height of a PNG (IHDR), or null when it is not one. */
export function pngSize(png: Uint8Array): { width: number; height: number } | null {
  const b = Buffer.from(png.buffer, png.byteOffset, png.byteLength)
  if (b.length < 24 || b.readUInt32BE(0) !== 0x89504e47 || b.toString('latin1', 12, 16) !== 'IHDR')
    return null
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) }
}

type CircleCommand = Extract<Command, { kind: 'circle' }>

function describe(cmd: CircleCommand): string {
  const window =
    cmd.window === '48h' ? 'the last 48 hours' : `the last ${cmd.window.slice(0, -1)} days`
  const who = cmd.direction === 'received' ? 'who interacted with you most' : 'your closest circle'
  return `${who} over ${window}${cmd.nolikes ? ', likes left out' : ''}`
}

export function circleText(cmd: CircleCommand): string {
  const d = describe(cmd)
  return `Here is ${d}.`
}

/**
 * The image's alt text: the top members by handle (a DID where the AppView gave none), best first. Plain
 * text without facets, so nobody named is notified.
 */
export function altText(cmd: CircleCommand, members: readonly CircleMember[], top = 10): string {
  const names = members.slice(0, top).map((m) => (m.handle ? `@${m.handle}` : m.did))
  const more = members.length > top ? `, and ${members.length - top} more` : ''
  return `A circle of avatars showing ${describe(cmd)}: ${names.join(', ')}${more}.`.slice(0, 2000)
}

export interface ReplyParts {
  text: string
  parent: StrongRef
  root: StrongRef
  image?: { blob: BlobRef; alt: string; size: { width: number; height: number } | null }
}

/** The post record of a reply: reply refs, text, and the image embed; no facets. */
export function replyRecord(p: ReplyParts, now: Date): Record<string, unknown> {
  const record: Record<string, unknown> = {
    $type: POST,
    text: p.text,
    createdAt: now.toISOString(),
    reply: { root: p.root, parent: p.parent },
  }
  if (p.image) {
    const image: Record<string, unknown> = { image: p.image.blob, alt: p.image.alt }
    if (p.image.size) image.aspectRatio = p.image.size
    record.embed = { $type: 'app.bsky.embed.images', images: [image] }
  }
  return record
}
