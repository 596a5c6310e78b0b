// What every page's script shares: element lookup, the theme switch, API calls that turn error bodies into
// messages, and the page's state in its URL (so every state can be shared and reloaded).

export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id)
  if (!el) throw new Error(`the page has no #${id}`)
  return el as T
}

const THEME_KEY = 'circles-theme'

/** Dark or light follows the system until the visitor picks one; the pick is kept in localStorage. */
export function setUpTheme(): void {
  const button = $<HTMLButtonElement>('theme')
  const system = () => (matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark')
  const apply = (theme: string) => {
    document.documentElement.dataset.theme = theme
    const light = theme === 'light'
    button.setAttribute('aria-pressed', String(light))
    button.textContent = light ? 'Dark theme' : 'Light theme'
  }
  apply(localStorage.getItem(THEME_KEY) ?? system())
  button.addEventListener('click', () => {
    const next = document.documentElement.dataset.theme === 'light' ? 'dark' : 'light'
    localStorage.setItem(THEME_KEY, next)
    apply(next)
  })
}

/** An API answer that is not 2xx: its JSON error, kept whole so pages can tell OptedOut from NotFound. */
export class ApiError extends Error {
  override name = 'ApiError'
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message)
  }
}

export async function getJson<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(path, init)
  const body = (await res.json().catch(() => null)) as {
    error?: string
    message?: string
  } | null
  if (!res.ok) {
    throw new ApiError(res.status, body?.error ?? 'Error', body?.message ?? `HTTP ${res.status}`)
  }
  return body as T
}

/** A handle or DID as typed: no spaces, no leading @. */
export function cleanActor(s: string): string {
  return s.trim().replace(/^@/, '')
}

/** Replaces the URL's query with `state` (empty values left out) without a new history entry per keystroke. */
export function writeUrl(state: Record<string, string>, push: boolean): void {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(state)) if (v) q.set(k, v)
  const url = `${location.pathname}${q.size ? `?${q}` : ''}`
  if (url === `${location.pathname}${location.search}`) return
  if (push) history.pushState(null, '', url)
  else history.replaceState(null, '', url)
}

export function readUrl(): URLSearchParams {
  return new URLSearchParams(location.search)
}

/** The words for an account: its handle, else its DID. */
export function nameOf(a: { did: string; handle?: string; displayName?: string }): string {
  return a.displayName || a.handle || a.did
}

export type Counts = { like: number; repost: number; reply: number; quote: number }
export const KINDS = ['reply', 'quote', 'repost', 'like'] as const

let marked = false

/**
 * Marks the page's first content as drawn: `data-ready` on <html> gets the milliseconds from navigation
 * start to the frame that paints it, once the page's eager images are decoded. The web tests wait for it
 * and `pnpm bench:web` reads it as the page's first render. Later calls do nothing.
 */
export function markReady(): void {
  if (marked) return
  marked = true
  const images = [...document.images].filter((i) => !i.hidden && i.loading !== 'lazy' && i.src)
  void Promise.all(images.map((i) => i.decode().catch(() => {}))).then(() =>
    requestAnimationFrame(() => {
      document.documentElement.dataset.ready = String(Math.round(performance.now()))
    }),
  )
}
