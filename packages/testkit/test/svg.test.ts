import { describe, expect, it } from 'vitest'
import { svgTitles } from '../src/svg.js'

const NS = 'xmlns="http://www.w3.org/2000/svg"'

describe('svgTitles', () => {
  it('returns the titles of a well-formed SVG, unescaped', () => {
    const svg = `<?xml version="1.0"?><svg ${NS} width="10"><!-- c --><g><title>a&amp;b.test</title><circle r="1"/></g><g><title>c</title><text x="1">C &gt; D</text></g></svg>`
    expect(svgTitles(svg)).toEqual(['a&b.test', 'c'])
  })

  it.each([
    ['not svg', '<html></html>', /start with <svg/],
    ['no namespace', '<svg><g></g></svg>', /namespace/],
    ['unclosed', `<svg ${NS}><g></svg>`, /closes <g>/],
    ['crossed', `<svg ${NS}><g><title>x</g></title></svg>`, /closes <title>/],
    ['stray <', `<svg ${NS}><text>a < b</text></svg>`, /stray/],
    ['bare &', `<svg ${NS}><text>a & b</text></svg>`, /stray/],
    ['two roots', `<svg ${NS}></svg><svg ${NS}></svg>`, /2 root/],
  ])('rejects %s', (_, svg, why) => {
    expect(() => svgTitles(svg)).toThrow(why)
  })
})
