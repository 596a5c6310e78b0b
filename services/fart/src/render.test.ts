import { describe, expect, it } from 'vitest'
import type { Circle } from './circle-compute.js'
import { pngFonts, renderPng, renderSvg } from './render.js'

const A = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
const B = 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb'
const C = 'did:web:example.com'
const zero = { like: 0, repost: 0, reply: 0, quote: 0 }

const circle = {
  actor: { did: A, handle: 'alice.test' },
  window: '24h',
  direction: 'both',
  weights: { like: 1, repost: 2, reply: 3, quote: 3 },
  ringSizes: [2],
  rings: [
    {
      ring: 1,
      members: [
        { did: B, handle: 'bob.test', score: 3, sent: zero, received: zero },
        { did: C, score: 1, sent: zero, received: zero },
      ],
    },
  ],
  profilesComplete: true,
  generatedAt: new Date().toISOString(),
} as unknown as Circle

describe('renderSvg', () => {
  it('links each member (not the actor) to its circle with the page query, escaped, named by handle', () => {
    const svg = renderSvg(
      circle,
      new Map(),
      400,
      new URLSearchParams({ window: '24h', nolikes: '1' }),
    )
    expect(svg).toContain(
      `<a href="/?actor=${encodeURIComponent(B)}&#38;window=24h&#38;nolikes=1"><g><title>bob.test</title>`,
    )
    // No handle: the DID names the link.
    expect(svg).toContain(`<g><title>${C}</title>`)
    // The initials are no part of the name.
    expect(svg).toMatch(/<text [^>]*aria-hidden="true">BO<\/text>/)
    expect(svg.match(/<a /g)).toHaveLength(2)
    expect(svg).toContain('<g><title>alice.test</title>')
    // With links inside, the root is not role="img" (which would hide them from screen readers).
    expect(svg).toContain('role="graphics-document" aria-label="interaction circle of alice.test"')
  })

  it('draws no links without a page query (the PNG)', () => {
    const svg = renderSvg(circle, new Map(), 400)
    expect(svg).not.toContain('<a ')
    expect(svg).toContain('role="img"')
    expect(svg.match(/<g><title>/g)).toHaveLength(3)
  })
})

describe('renderPng', () => {
  it('draws with the DejaVu files what it drew with the system font scan, byte for byte', async (ctx) => {
    const fonts = pngFonts()
    // Without the files there is nothing to compare: the scan is what runs then.
    if (fonts.loadSystemFonts) ctx.skip()
    const svg = renderSvg(
      { ...circle, rings: [{ ring: 1, members: circle.rings[0]!.members }] },
      new Map(),
    )
    const scanned = await renderPng(svg, {
      loadSystemFonts: true,
      defaultFontFamily: 'DejaVu Sans',
    })
    expect(await renderPng(svg)).toEqual(scanned)
    // The text is drawn: a drawing without fonts differs.
    expect(
      await renderPng(svg, { loadSystemFonts: false, defaultFontFamily: 'DejaVu Sans' }),
    ).not.toEqual(scanned)
  })
})
