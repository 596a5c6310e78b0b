import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { renderAsync } from '@resvg/resvg-js'
import { type Circle, memberInitials } from './circle-compute.js'

// Draws a circle server-side: the actor in the middle, each ring's members evenly spaced around it, avatars
// clipped to discs, initials on a coloured disc where there is no avatar (or it could not be fetched).
// Avatars are embedded as data: URIs so the SVG is self-contained (an <img> of an SVG may not load
// external images) and resvg, which does not fetch URLs, can rasterise it to PNG.

export const IMAGE_SIZE = 800

const PALETTE = [
  '#5b8def',
  '#e0676b',
  '#53b98c',
  '#d89b3c',
  '#9a6fd8',
  '#3fb2c4',
  '#d86fb0',
  '#7c8a99',
]

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function colourOf(did: string): string {
  let h = 0
  for (let i = 0; i < did.length; i++) h = (h * 31 + did.charCodeAt(i)) >>> 0
  return PALETTE[h % PALETTE.length]!
}

interface Node {
  did: string
  handle?: string
  displayName?: string
  avatar?: string
  x: number
  y: number
  r: number
}

export function layout(circle: Circle, size = IMAGE_SIZE): Node[] {
  const c = size / 2
  const actorR = size * 0.085
  const nodes: Node[] = [{ ...circle.actor, x: c, y: c, r: actorR }]
  const rings = circle.rings.filter((r) => r.members.length > 0)
  const inner = actorR * 1.9
  const outer = size / 2 - size * 0.04
  const step = rings.length > 0 ? (outer - inner) / rings.length : 0
  rings.forEach((ring, i) => {
    const R = inner + step * (i + 0.5)
    const n = ring.members.length
    // As big as the ring's spacing and the circumference allow, shrinking outwards.
    const r = Math.max(4, Math.min(step * 0.46 * (1 - 0.15 * i), ((Math.PI * R) / n) * 0.9))
    const offset = i % 2 === 0 ? -Math.PI / 2 : -Math.PI / 2 + Math.PI / n
    ring.members.forEach((m, k) => {
      const a = offset + (2 * Math.PI * k) / n
      nodes.push({ ...m, x: c + R * Math.cos(a), y: c + R * Math.sin(a), r })
    })
  })
  return nodes
}

/**
 * @param images avatar URL -> data: URI; a URL missing here is drawn as initials.
 * @param linkQuery when set, each member's disc is a link to the page showing that member's circle with
 *   this query (the page's own parameters besides `actor`), so a click on the drawing walks the network.
 */
export function renderSvg(
  circle: Circle,
  images: ReadonlyMap<string, string>,
  size = IMAGE_SIZE,
  linkQuery?: URLSearchParams,
): string {
  const nodes = layout(circle, size)
  const defs: string[] = []
  const body: string[] = []
  nodes.forEach((n, i) => {
    const f = (v: number) => v.toFixed(1)
    const name = esc(n.handle ?? n.did)
    const img = n.avatar ? images.get(n.avatar) : undefined
    const disc = `<circle cx="${f(n.x)}" cy="${f(n.y)}" r="${f(n.r)}" fill="${colourOf(n.did)}"/>`
    if (img) {
      defs.push(
        `<clipPath id="c${i}"><circle cx="${f(n.x)}" cy="${f(n.y)}" r="${f(n.r)}"/></clipPath>`,
      )
    }
    const face = img
      ? `<image href="${esc(img)}" x="${f(n.x - n.r)}" y="${f(n.y - n.r)}" width="${f(2 * n.r)}" height="${f(2 * n.r)}" clip-path="url(#c${i})" preserveAspectRatio="xMidYMid slice"/>`
      : `<text x="${f(n.x)}" y="${f(n.y + n.r * 0.28)}" font-family="DejaVu Sans, Arial, sans-serif" font-size="${f(n.r * 0.8)}" font-weight="bold" fill="#ffffff" text-anchor="middle" aria-hidden="true">${esc(memberInitials(n))}</text>`
    // A member's link is named by its <title> (the handle); the initials, the avatar's stand-in, are hidden
    // from screen readers so the name is not "S2 alice.test". No aria-label: a label that leaves out the
    // visible initials fails WCAG 2.5.3 (axe: label-content-name-mismatch).
    const g = `<g><title>${name}</title>${disc}${face}</g>`
    // The actor (node 0) is the circle shown: a link to it would go nowhere new.
    if (i === 0 || !linkQuery) body.push(g)
    else body.push(`<a href="${esc(memberHref(n.did, linkQuery))}">${g}</a>`)
  })
  const label = esc(circle.actor.handle ?? circle.actor.did)
  return (
    // With links inside, not role="img": that would make them presentational, hidden from screen readers.
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}" role="${linkQuery ? 'graphics-document' : 'img'}" aria-label="interaction circle of ${label}">` +
    `<rect width="${size}" height="${size}" fill="#16202c"/>` +
    `<defs>${defs.join('')}</defs>${body.join('')}` +
    `<text x="${size - 12}" y="${size - 12}" font-family="DejaVu Sans, Arial, sans-serif" font-size="14" fill="#8899aa" text-anchor="end">${label} · ${esc(circle.window)}</text>` +
    `</svg>`
  )
}

function memberHref(did: string, query: URLSearchParams): string {
  const q = new URLSearchParams({ actor: did })
  for (const [k, v] of query) if (k !== 'actor') q.set(k, v)
  return `/?${q}`
}

/** Where distributions put DejaVu Sans (Debian's fonts-dejavu-core; Fedora's, Alpine's). */
const DEJAVU_DIRS = ['/usr/share/fonts/truetype/dejavu', '/usr/share/fonts/dejavu-sans-fonts']
const DEJAVU_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf']

/**
 * resvg builds its font database anew for every render: a scan of the system fonts cost ~10 ms of a ~35 ms
 * PNG here (39 fonts; more on a desktop). The two files the drawing uses (DejaVu Sans and its bold, what
 * the scan picks for the family) give the same pixels (render.test.ts); where they are not found, the scan.
 */
export function pngFonts(dirs: readonly string[] = DEJAVU_DIRS) {
  for (const dir of dirs) {
    const files = DEJAVU_FILES.map((f) => join(dir, f))
    if (files.every((f) => existsSync(f))) {
      return { fontFiles: files, loadSystemFonts: false, defaultFontFamily: 'DejaVu Sans' }
    }
  }
  return { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }
}
const FONTS = pngFonts()

/** Rasterises off the event loop (resvg's async render runs on the libuv thread pool). */
export async function renderPng(svg: string, font = FONTS): Promise<Buffer> {
  const image = await renderAsync(svg, { font })
  return image.asPng()
}
