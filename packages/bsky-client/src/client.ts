import { retryDelayMs } from '@circles/core'
import { createLogger, type Logger } from '@circles/logging'

// A small XRPC client for the public AppView. It exists because the original system let every browser crawl
// profiles 25 at a time; here the server does it once, in batches, behind a Redis cache, with retries that
// respect the AppView's rate-limit headers instead of hammering it.

export const DEFAULT_APPVIEW_URL = 'https://public.api.bsky.app'
/** The AppView's limit for `app.bsky.actor.getProfiles`. */
export const PROFILES_PER_CALL = 25

export class AppViewError extends Error {
  override name = 'AppViewError'
  constructor(
    message: string,
    /** HTTP status, or 0 when no response arrived (network error, timeout). */
    readonly status: number,
    /** The XRPC error name from the body (`InvalidRequest`, `RateLimitExceeded`...), if any. */
    readonly error?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/** What every call reports, for logs and metrics. */
export interface CallInfo {
  nsid: string
  /** HTTP status of the final attempt, 0 when none arrived. */
  status: number
  /** Wall time of the whole call, retries included. */
  latencyMs: number
  attempts: number
  ok: boolean
  /** Short error class when not ok: `http`, `network`, `timeout`, `rate_limited`. */
  error?: string
}

export interface BskyClientOptions {
  /** @default https://public.api.bsky.app */
  appviewUrl?: string
  /** Retries after the first attempt, on 429, 5xx, network errors and timeouts. @default 2 */
  maxRetries?: number
  /** First backoff delay; doubles each retry, with jitter. @default 200 */
  baseDelayMs?: number
  /** Longest wait we accept; a rate-limit reset further away fails at once instead. @default 2000 */
  maxDelayMs?: number
  /** Per-attempt timeout. @default 5000 */
  timeoutMs?: number
  /** Parallel getProfiles batches. @default 4 */
  concurrency?: number
  /** Called once per call (after retries) with status and latency: wire metrics here. */
  onCall?: (info: CallInfo) => void
  logger?: Logger
  /** For tests: replaces setTimeout-based sleeping. */
  sleep?: (ms: number) => Promise<void>
}

export interface Profile {
  did: string
  handle: string
  displayName?: string
  avatar?: string
  description?: string
}

export type QueryParams = Record<string, string | number | boolean | readonly string[] | undefined>

export interface BskyClient {
  readonly appviewUrl: string
  /** One XRPC query with retries; resolves the parsed JSON body. */
  query(nsid: string, params?: QueryParams): Promise<unknown>
  /** Profiles for DIDs or handles, 25 per call, batches in parallel. Unknown actors are simply absent. */
  getProfiles(actors: readonly string[]): Promise<Profile[]>
  /** DID for a handle, or null when the AppView says the handle does not resolve. */
  resolveHandle(handle: string): Promise<string | null>
  /** Follows `cursor` through a paginated query, yielding each page's `key` array items. */
  paginate<T = unknown>(
    nsid: string,
    params: QueryParams,
    key: string,
    opts?: { maxPages?: number },
  ): AsyncGenerator<T>
  /** Counters since start: calls, errors, retries, by status. */
  stats(): { calls: number; errors: number; retries: number; byStatus: Record<string, number> }
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Milliseconds to wait according to `retry-after` or `ratelimit-reset` (core's `retryDelayMs`). */
export function retryDelayFromHeaders(headers: Headers, now = Date.now()): number | undefined {
  return retryDelayMs(headers.get('retry-after'), headers.get('ratelimit-reset'), now)
}

function buildUrl(base: string, nsid: string, params: QueryParams = {}): string {
  const url = new URL(`/xrpc/${nsid}`, base)
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue
    if (Array.isArray(v)) for (const item of v) url.searchParams.append(k, String(item))
    else url.searchParams.set(k, String(v))
  }
  return url.toString()
}

function isProfile(value: unknown): value is Profile {
  const p = value as Profile
  return (
    typeof p === 'object' && p !== null && typeof p.did === 'string' && typeof p.handle === 'string'
  )
}

function pickProfile(p: Profile): Profile {
  const out: Profile = { did: p.did, handle: p.handle }
  if (typeof p.displayName === 'string' && p.displayName !== '') out.displayName = p.displayName
  if (typeof p.avatar === 'string' && /^https?:\/\//.test(p.avatar)) out.avatar = p.avatar
  if (typeof p.description === 'string') out.description = p.description.slice(0, 300)
  return out
}

export function createBskyClient(opts: BskyClientOptions = {}): BskyClient {
  const appviewUrl = opts.appviewUrl ?? DEFAULT_APPVIEW_URL
  const maxRetries = opts.maxRetries ?? 2
  const baseDelayMs = opts.baseDelayMs ?? 200
  const maxDelayMs = opts.maxDelayMs ?? 2000
  const timeoutMs = opts.timeoutMs ?? 5000
  const concurrency = Math.max(1, opts.concurrency ?? 4)
  const sleep = opts.sleep ?? defaultSleep
  const log = opts.logger ?? createLogger('bsky-client')
  const counters = { calls: 0, errors: 0, retries: 0, byStatus: {} as Record<string, number> }

  function report(info: CallInfo) {
    counters.calls++
    if (!info.ok) counters.errors++
    const key = String(info.status)
    counters.byStatus[key] = (counters.byStatus[key] ?? 0) + 1
    const line = {
      nsid: info.nsid,
      status: info.status,
      ms: Math.round(info.latencyMs),
      attempts: info.attempts,
    }
    if (info.ok) log.debug(line, 'appview call')
    else log.warn({ ...line, error: info.error }, 'appview call failed')
    try {
      opts.onCall?.(info)
    } catch (err) {
      log.error({ err }, 'onCall hook threw')
    }
  }

  async function query(nsid: string, params?: QueryParams): Promise<unknown> {
    const url = buildUrl(appviewUrl, nsid, params)
    const started = performance.now()
    let attempt = 0
    for (;;) {
      attempt++
      let status = 0
      let retryable: boolean
      let waitMs: number | undefined
      let failure: AppViewError
      try {
        const res = await fetch(url, {
          headers: { accept: 'application/json' },
          signal: AbortSignal.timeout(timeoutMs),
        })
        status = res.status
        if (res.ok) {
          const body = (await res.json()) as unknown
          report({
            nsid,
            status,
            latencyMs: performance.now() - started,
            attempts: attempt,
            ok: true,
          })
          return body
        }
        let errName: string | undefined
        let message = `${nsid} answered ${status}`
        try {
          const body = (await res.json()) as { error?: unknown; message?: unknown }
          if (typeof body.error === 'string') errName = body.error
          if (typeof body.message === 'string') message = `${message}: ${body.message}`
        } catch {
          // not JSON: keep the status line
        }
        failure = new AppViewError(message, status, errName)
        retryable = status === 429 || status >= 500
        if (retryable) waitMs = retryDelayFromHeaders(res.headers)
      } catch (err) {
        const timeout = (err as Error).name === 'TimeoutError'
        failure = new AppViewError(
          timeout ? `${nsid} timed out after ${timeoutMs} ms` : `${nsid} unreachable`,
          0,
          timeout ? 'Timeout' : 'NetworkError',
          { cause: err },
        )
        retryable = true
      }
      const backoff = Math.min(
        maxDelayMs,
        baseDelayMs * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5),
      )
      const delay = waitMs ?? backoff
      // A reset further away than we are willing to wait: fail now, the caller serves without profiles.
      const rateLimitedTooLong = waitMs !== undefined && waitMs > maxDelayMs
      if (!retryable || attempt > maxRetries || rateLimitedTooLong) {
        const kind =
          status === 429
            ? 'rate_limited'
            : status === 0
              ? failure.error === 'Timeout'
                ? 'timeout'
                : 'network'
              : 'http'
        report({
          nsid,
          status,
          latencyMs: performance.now() - started,
          attempts: attempt,
          ok: false,
          error: kind,
        })
        throw failure
      }
      counters.retries++
      log.debug({ nsid, status, attempt, delay }, 'appview call retrying')
      await sleep(delay)
    }
  }

  async function getProfiles(actors: readonly string[]): Promise<Profile[]> {
    const unique = [...new Set(actors)]
    const batches: string[][] = []
    for (let i = 0; i < unique.length; i += PROFILES_PER_CALL) {
      batches.push(unique.slice(i, i + PROFILES_PER_CALL))
    }
    const out: Profile[] = []
    let next = 0
    async function worker() {
      while (next < batches.length) {
        const batch = batches[next++]!
        const body = (await query('app.bsky.actor.getProfiles', { actors: batch })) as {
          profiles?: unknown
        }
        if (Array.isArray(body.profiles)) {
          for (const p of body.profiles) if (isProfile(p)) out.push(pickProfile(p))
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, batches.length) }, worker))
    return out
  }

  async function resolveHandle(handle: string): Promise<string | null> {
    try {
      const body = (await query('com.atproto.identity.resolveHandle', { handle })) as {
        did?: unknown
      }
      return typeof body.did === 'string' ? body.did : null
    } catch (err) {
      // The AppView answers 400 InvalidRequest "Unable to resolve handle" for an unknown handle.
      if (err instanceof AppViewError && (err.status === 400 || err.status === 404)) return null
      throw err
    }
  }

  async function* paginate<T>(
    nsid: string,
    params: QueryParams,
    key: string,
    popts: { maxPages?: number } = {},
  ): AsyncGenerator<T> {
    let cursor: string | undefined
    const maxPages = popts.maxPages ?? 100
    for (let page = 0; page < maxPages; page++) {
      const body = (await query(nsid, { ...params, cursor })) as Record<string, unknown>
      const items = body[key]
      if (Array.isArray(items)) for (const item of items) yield item as T
      const next = body.cursor
      // A server that repeats its cursor would loop forever: stop instead.
      if (typeof next !== 'string' || next === '' || next === cursor) return
      cursor = next
    }
  }

  return {
    appviewUrl,
    query,
    getProfiles,
    resolveHandle,
    paginate,
    stats: () => ({ ...counters, byStatus: { ...counters.byStatus } }),
  }
}
