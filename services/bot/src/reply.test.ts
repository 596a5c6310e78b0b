import { isValidTid, tidTimestampMs } from '@circles/core'
import { describe, expect, it } from 'vitest'
import { parseCommand } from './command.js'
import { altText, pngSize, replyRecord, replyRkey } from './reply.js'

const URI = 'at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3l3qo2vutsw2c'

describe('replyRkey', () => {
  it('is a valid TID in the second of the mention, the same for the same mention, else different', () => {
    const now = Date.now()
    const a = replyRkey(URI, now)
    expect(isValidTid(a)).toBe(true)
    expect(replyRkey(URI, now)).toBe(a)
    expect(Math.floor(tidTimestampMs(a) / 1000)).toBe(Math.floor(now / 1000))
    expect(replyRkey(`${URI}x`, now)).not.toBe(a)
    const many = new Set(Array.from({ length: 2000 }, (_, i) => replyRkey(`${URI}${i}`, now)))
    expect(many.size).toBe(2000)
  })
})

describe('alt text and record', () => {
  const cmd = parseCommand('circle 30d no likes')
  if (cmd.kind !== 'circle') throw new Error('not a circle')

  it('names the top members by handle, best first, DIDs where no handle', () => {
    const members = [
      { did: 'did:plc:a', handle: 'alice.test', score: 9 },
      { did: 'did:plc:b', score: 5 },
      { did: 'did:plc:c', handle: 'carol.test', score: 1 },
    ]
    const alt = altText(cmd, members, 2)
    expect(alt).toContain('@alice.test, did:plc:b, and 1 more')
    expect(alt).toContain('30 days, likes left out')
    expect(alt).not.toContain('carol')
  })

  it('is a reply with an image and no facets', () => {
    const ref = { uri: URI, cid: 'bafyx' }
    const r = replyRecord(
      { text: 't', parent: ref, root: ref, image: { blob: { x: 1 }, alt: 'a', size: null } },
      new Date(),
    )
    expect(r.reply).toEqual({ root: ref, parent: ref })
    expect(r.facets).toBeUndefined()
    expect(r.embed).toEqual({
      $type: 'app.bsky.embed.images',
      images: [{ image: { x: 1 }, alt: 'a' }],
    })
  })

  it('reads a PNG size and refuses what is not a PNG', () => {
    const png = Buffer.alloc(24)
    png.writeUInt32BE(0x89504e47, 0)
    png.write('IHDR', 12, 'latin1')
    png.writeUInt32BE(640, 16)
    png.writeUInt32BE(480, 20)
    expect(pngSize(png)).toEqual({ width: 640, height: 480 })
    expect(pngSize(Buffer.from('GIF89a-not-a-png-at-all.'))).toBeNull()
  })
})
