import { readFileSync } from 'node:fs'

// A `.env` reader with the same rules as Node's `--env-file` (which the PM2 apps use), so that `pnpm start`,
// `pnpm doctor` and PM2 read the same file the same way: KEY=VALUE lines, `#` comments, optional `export`,
// single, double or back quotes (double quotes expand \n). Variables already in the environment win.

const LINE_RE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)?\s*$/

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.replace(/\r\n?/g, '\n').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = LINE_RE.exec(lines[i] ?? '')
    if (!m) continue
    const key = m[1] as string
    let value = (m[2] ?? '').trim()
    const q = value[0]
    if (q === '"' || q === "'" || q === '`') {
      // A quoted value may span lines until its closing quote.
      let body = value.slice(1)
      while (!body.includes(q) && i + 1 < lines.length) body += `\n${lines[++i]}`
      const end = body.indexOf(q)
      value = end === -1 ? body : body.slice(0, end)
      if (q === '"') value = value.replace(/\\n/g, '\n')
    } else {
      // As in dotenv and Node: an unquoted value ends at `#`.
      const hash = value.indexOf('#')
      if (hash !== -1) value = value.slice(0, hash).trim()
    }
    out[key] = value
  }
  return out
}

/** Reads `path` if it exists; returns `{}` when it does not. */
export function readEnvFile(path: string): Record<string, string> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw err
  }
  return parseEnvFile(text)
}

/** The file's values under the process environment: a variable set in the shell wins over the file. */
export function mergeEnv(
  file: Record<string, string>,
  env: Record<string, string | undefined> = process.env,
): Record<string, string> {
  const out: Record<string, string> = { ...file }
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v
  return out
}
