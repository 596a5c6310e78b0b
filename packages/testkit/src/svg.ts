// A small check of a drawn circle without a browser: the document is well-formed XML with an <svg> root in
// the SVG namespace, and the text of each node's <title> (the API names every disc with one). Enough for
// markup the project generates itself; tests that have Chromium let the browser parse it as well.

export class SvgError extends Error {
  override name = 'SvgError'
}

const TOKEN =
  /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|<|&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;)/g

/** Throws SvgError unless `text` is a well-formed SVG document; returns the text of every <title>. */
export function svgTitles(text: string): string[] {
  const body = text.replace(/^\uFEFF?\s*(<\?xml[\s\S]*?\?>\s*)?/, '')
  if (!body.startsWith('<svg')) throw new SvgError('the document does not start with <svg')
  const open: string[] = []
  const titles: string[] = []
  let titleFrom = -1
  let roots = 0
  for (const m of body.matchAll(TOKEN)) {
    const [whole, closing, name, attrs, selfClosing] = m
    if (whole.startsWith('<!--') || whole.startsWith('<?')) continue
    if (name === undefined) throw new SvgError(`stray ${whole} at ${m.index}`)
    if (closing) {
      const top = open.pop()
      if (top !== name) throw new SvgError(`</${name}> closes <${top ?? 'nothing'}> at ${m.index}`)
      if (name === 'title' && titleFrom >= 0) {
        titles.push(body.slice(titleFrom, m.index))
        titleFrom = -1
      }
      continue
    }
    if (open.length === 0) {
      roots++
      if (name !== 'svg' || !/\sxmlns\s*=\s*"http:\/\/www\.w3\.org\/2000\/svg"/.test(attrs ?? '')) {
        throw new SvgError('the root is not an <svg> in the SVG namespace')
      }
    }
    if (selfClosing) continue
    open.push(name)
    if (name === 'title') titleFrom = m.index + whole.length
  }
  if (open.length > 0) throw new SvgError(`unclosed <${open.join('>, <')}>`)
  if (roots !== 1) throw new SvgError(`${roots} root elements`)
  return titles.map(unescapeXml)
}

function unescapeXml(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&#x([0-9a-fA-F]+);/g, (_, h: string) => String.fromCodePoint(Number.parseInt(h, 16)))
    .replace(/&amp;/g, '&')
}
