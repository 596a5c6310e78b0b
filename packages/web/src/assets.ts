import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

// The pages' scripts and style sheet, bundled once per process from the TypeScript sources in browser/ and
// styles/ (esbuild: ~100 ms at start, no build step of its own to forget, and what is served is always what
// the sources say). Each asset is named by a hash of its bytes, so browsers may keep it for a year, and is
// gzipped once here rather than on every request.

export const PAGES = ['explorer', 'stats', 'history'] as const
export type PageName = (typeof PAGES)[number]

export interface Asset {
  /** `/assets/<name>-<hash>.<ext>` */
  path: string
  type: string
  body: Buffer
  gzip: Buffer
  etag: string
}

export interface WebAssets {
  /** by served path */
  byPath: ReadonlyMap<string, Asset>
  css: Asset
  scripts: Readonly<Record<PageName, Asset>>
}

/** packages/web, whether this runs from src/ (tests through vite) or dist/src/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir)
  return dir
}

function asset(name: string, ext: string, type: string, body: Buffer): Asset {
  const hash = createHash('sha256').update(body).digest('base64url').slice(0, 12)
  return {
    path: `/assets/${name}-${hash}.${ext}`,
    type,
    body,
    gzip: gzipSync(body, { level: 9 }),
    etag: `"${hash}"`,
  }
}

async function bundle(): Promise<WebAssets> {
  const root = packageRoot()
  const out = await build({
    entryPoints: [
      ...PAGES.map((p) => ({ in: join(root, 'browser', `${p}.ts`), out: p })),
      { in: join(root, 'styles', 'app.css'), out: 'app' },
    ],
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022'],
    write: false,
    outdir: '/out',
    logLevel: 'silent',
    legalComments: 'none',
  })
  const files = new Map(out.outputFiles.map((f) => [f.path, Buffer.from(f.contents)]))
  const take = (file: string): Buffer => {
    const body = files.get(`/out/${file}`)
    if (!body) throw new Error(`web assets: esbuild produced no ${file}`)
    return body
  }
  const css = asset('app', 'css', 'text/css; charset=utf-8', take('app.css'))
  const scripts = Object.fromEntries(
    PAGES.map((p) => [p, asset(p, 'js', 'text/javascript; charset=utf-8', take(`${p}.js`))]),
  ) as Record<PageName, Asset>
  const byPath = new Map([css, ...Object.values(scripts)].map((a) => [a.path, a]))
  return { byPath, css, scripts }
}

let built: Promise<WebAssets> | undefined

/** The bundled assets; built on the first call, shared by every app in the process. */
export function webAssets(): Promise<WebAssets> {
  built ??= bundle().catch((err: Error) => {
    built = undefined
    throw new Error(`web assets: bundling failed: ${err.message}`, { cause: err })
  })
  return built
}
