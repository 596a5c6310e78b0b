// The Prometheus text format, as far as this project reads and writes it: BullMQ's per-queue exports merged
// into one, and /metrics pages read back by `pnpm doctor` and the tests.

export interface Sample {
  /** The series name as written (`x_bucket`, `x_sum`, ... for a histogram's parts). */
  name: string
  labels: Record<string, string>
  value: number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/y

function parseLabels(text: string): Record<string, string> | null {
  const labels: Record<string, string> = {}
  LABEL.lastIndex = 0
  while (LABEL.lastIndex < text.length) {
    const at = LABEL.lastIndex
    const m = LABEL.exec(text)
    if (!m) return text.slice(at).trim() === '' ? labels : null
    labels[m[1] as string] = (m[2] as string).replace(/\\(.)/g, (_, c: string) =>
      c === 'n' ? '\n' : c,
    )
  }
  return labels
}

function parseValue(v: string): number {
  if (v === '+Inf') return Number.POSITIVE_INFINITY
  if (v === '-Inf') return Number.NEGATIVE_INFINITY
  return Number(v)
}

/** Every sample of a page; comment lines are skipped, a line that is not a sample throws. */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = SAMPLE.exec(line)
    const labels = m ? parseLabels(m[2] ?? '') : null
    if (!m || !labels) throw new Error(`not a Prometheus sample: ${JSON.stringify(line)}`)
    out.push({ name: m[1] as string, labels, value: parseValue(m[3] as string) })
  }
  return out
}

/** The names declared by `# TYPE` lines, with their types. */
export function declaredMetrics(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)/.exec(line.trim())
    if (m) out.set(m[1] as string, m[2] as string)
  }
  return out
}

/**
 * Several pages as one: each metric's `# HELP` and `# TYPE` once, its samples from every page together.
 * BullMQ exports one page per queue, each declaring the same names: a page that declared a name twice
 * would be refused by Prometheus ("second TYPE line").
 */
export function mergeExposition(pages: readonly string[]): string {
  const heads = new Map<string, string[]>()
  const samples = new Map<string, string[]>()
  for (const page of pages) {
    let current = ''
    for (const raw of page.split('\n')) {
      const line = raw.trim()
      if (line === '') continue
      const meta = /^# (HELP|TYPE) (\S+)/.exec(line)
      if (meta) {
        current = meta[2] as string
        const head = heads.get(current) ?? []
        if (!head.some((h) => h.startsWith(`# ${meta[1]} `))) head.push(line)
        heads.set(current, head)
        continue
      }
      if (line.startsWith('#')) continue
      const name = SAMPLE.exec(line)?.[1] ?? current
      const family = heads.has(name) ? name : current
      let list = samples.get(family)
      if (list === undefined) {
        list = []
        samples.set(family, list)
      }
      list.push(line)
    }
  }
  const out: string[] = []
  for (const name of new Set([...heads.keys(), ...samples.keys()])) {
    out.push(...(heads.get(name) ?? []), ...(samples.get(name) ?? []))
  }
  return out.join('\n')
}
