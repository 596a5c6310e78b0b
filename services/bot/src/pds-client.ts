// The few XRPC calls the bot makes on its own PDS, over fetch: no agent object with its own session
// handling, because the session lives in Redis (session.ts) and every process must see the same one.

export class XrpcError extends Error {
  override name = 'XrpcError'
  constructor(
    readonly method: string,
    /** HTTP status; 0 when the request did not get an answer. */
    readonly status: number,
    /** The XRPC error name (`AuthenticationRequired`, `ExpiredToken`, `InvalidRequest`...), or ''. */
    readonly error: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${method}: ${status} ${error} ${message}`.trim(), options)
  }
}

export interface SessionTokens {
  did: string
  handle: string
  accessJwt: string
  refreshJwt: string
}

export interface StrongRef {
  uri: string
  cid: string
}

/** A blob reference as uploadBlob returns it, to put in a record as it is. */
export type BlobRef = Record<string, unknown>

const TIMEOUT_MS = 30_000

export class PdsClient {
  constructor(readonly url: string) {}

  private async call(
    method: string,
    init: { token?: string; json?: unknown; bytes?: Uint8Array; type?: string; query?: string },
  ): Promise<unknown> {
    const headers: Record<string, string> = {}
    if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`
    let body: string | Uint8Array | undefined
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(init.json)
    } else if (init.bytes !== undefined) {
      headers['content-type'] = init.type ?? 'application/octet-stream'
      body = init.bytes
    }
    const post = init.json !== undefined || init.bytes !== undefined || init.query === undefined
    const url = new URL(`/xrpc/${method}${init.query ? `?${init.query}` : ''}`, this.url)
    let res: Response
    try {
      res = await fetch(url, {
        method: post ? 'POST' : 'GET',
        headers,
        body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      })
    } catch (cause) {
      throw new XrpcError(method, 0, '', 'no answer', { cause })
    }
    const text = await res.text()
    let parsed: unknown = null
    try {
      parsed = text === '' ? null : JSON.parse(text)
    } catch {
      // a non-JSON body (a proxy's error page): the status says enough
    }
    if (!res.ok) {
      const p = (parsed ?? {}) as { error?: unknown; message?: unknown }
      throw new XrpcError(
        method,
        res.status,
        typeof p.error === 'string' ? p.error : '',
        typeof p.message === 'string' ? p.message.slice(0, 300) : '',
      )
    }
    return parsed
  }

  async createSession(identifier: string, password: string): Promise<SessionTokens> {
    const m = 'com.atproto.server.createSession'
    return tokens(m, await this.call(m, { json: { identifier, password } }))
  }

  async refreshSession(refreshJwt: string): Promise<SessionTokens> {
    const m = 'com.atproto.server.refreshSession'
    return tokens(m, await this.call(m, { token: refreshJwt }))
  }

  /** Revokes the session of `refreshJwt` (what logging out does). */
  async deleteSession(refreshJwt: string): Promise<void> {
    await this.call('com.atproto.server.deleteSession', { token: refreshJwt })
  }

  async uploadBlob(token: string, bytes: Uint8Array, type: string): Promise<BlobRef> {
    const m = 'com.atproto.repo.uploadBlob'
    const out = (await this.call(m, { token, bytes, type })) as { blob?: unknown } | null
    if (!out || typeof out.blob !== 'object' || out.blob === null)
      throw new XrpcError(m, 200, '', 'answer without a blob')
    return out.blob as BlobRef
  }

  async createRecord(
    token: string,
    input: { repo: string; collection: string; rkey: string; record: unknown },
  ): Promise<StrongRef> {
    const m = 'com.atproto.repo.createRecord'
    return strongRef(m, await this.call(m, { token, json: input }))
  }

  /** The record's ref, or null when there is none. */
  async getRecord(repo: string, collection: string, rkey: string): Promise<StrongRef | null> {
    const m = 'com.atproto.repo.getRecord'
    const query = new URLSearchParams({ repo, collection, rkey }).toString()
    try {
      return strongRef(m, await this.call(m, { query }))
    } catch (err) {
      if (err instanceof XrpcError && (err.status === 404 || err.error === 'RecordNotFound'))
        return null
      throw err
    }
  }
}

function tokens(method: string, body: unknown): SessionTokens {
  const b = (body ?? {}) as Record<string, unknown>
  for (const f of ['did', 'handle', 'accessJwt', 'refreshJwt']) {
    if (typeof b[f] !== 'string') throw new XrpcError(method, 200, '', `answer without ${f}`)
  }
  return b as unknown as SessionTokens
}

function strongRef(method: string, body: unknown): StrongRef {
  const b = (body ?? {}) as Record<string, unknown>
  if (typeof b.uri !== 'string' || typeof b.cid !== 'string')
    throw new XrpcError(method, 200, '', 'answer without uri and cid')
  return { uri: b.uri, cid: b.cid }
}

/** A JWT's `exp` in ms (the token is not verified: it is ours, from our PDS); null when it has none. */
export function jwtExpiryMs(jwt: string): number | null {
  const part = jwt.split('.')[1]
  if (part === undefined) return null
  try {
    const exp = (JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { exp?: unknown })
      .exp
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null
  } catch {
    return null
  }
}
