import type { Command } from './command.js'

// The circle comes from the fart API over HTTP, as any client gets it: the renderer is the API's, and so
// is every privacy rule (an opted-out author answers 403 OptedOut; opted-out partners are never in it).

export class CircleApiError extends Error {
  override name = 'CircleApiError'
}

export interface CircleMember {
  did: string
  handle?: string
  score: number
}

export type CircleAnswer =
  | { kind: 'circle'; members: CircleMember[]; png: Uint8Array }
  | { kind: 'opted_out' }
  /** Deleted, unknown to the AppView, or nothing to draw. */
  | { kind: 'no_circle' }

type CircleCommand = Extract<Command, { kind: 'circle' }>

function query(cmd: CircleCommand): string {
  const q = new URLSearchParams({ window: cmd.window, direction: cmd.direction })
  if (cmd.nolikes) q.set('nolikes', 'true')
  return q.toString()
}

async function get(url: URL, timeoutMs: number): Promise<Response> {
  try {
    return await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  } catch (cause) {
    throw new CircleApiError(`no answer from ${url.origin}`, { cause })
  }
}

/** The members in ring order (the API's order: best first). */
function membersOf(body: unknown): CircleMember[] {
  const rings = (body as { rings?: unknown })?.rings
  if (!Array.isArray(rings)) throw new CircleApiError('circle answer without rings')
  const out: CircleMember[] = []
  for (const ring of rings) {
    const members = (ring as { members?: unknown })?.members
    if (!Array.isArray(members)) continue
    for (const m of members as Record<string, unknown>[]) {
      if (typeof m.did !== 'string') continue
      out.push({
        did: m.did,
        handle: typeof m.handle === 'string' ? m.handle : undefined,
        score: typeof m.score === 'number' ? m.score : 0,
      })
    }
  }
  return out
}

/** Reads the author's circle (JSON, for the alt text) and its PNG with the command's parameters. */
export async function fetchCircle(
  apiUrl: string,
  did: string,
  cmd: CircleCommand,
  timeoutMs = 60_000,
): Promise<CircleAnswer> {
  const path = `/v1/circles/${encodeURIComponent(did)}`
  const json = await get(new URL(`${path}?${query(cmd)}`, apiUrl), timeoutMs)
  if (json.status === 403) return { kind: 'opted_out' }
  if (json.status === 404) return { kind: 'no_circle' }
  if (!json.ok) throw new CircleApiError(`circle of ${did}: HTTP ${json.status}`)
  const members = membersOf(await json.json())
  if (members.length === 0) return { kind: 'no_circle' }
  const png = await get(new URL(`${path}.png?${query(cmd)}`, apiUrl), timeoutMs)
  // Opted out between the two requests: the later answer wins.
  if (png.status === 403) return { kind: 'opted_out' }
  if (!png.ok) throw new CircleApiError(`circle image of ${did}: HTTP ${png.status}`)
  return { kind: 'circle', members, png: new Uint8Array(await png.arrayBuffer()) }
}
