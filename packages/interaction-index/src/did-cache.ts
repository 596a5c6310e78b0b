import { didId } from './layout.js'

export interface DidInfo {
  did: string
  id: Buffer
  /** The id as an 8-character latin1 string: a cheap Map key. */
  key: string
}

/** A bounded memo of DID <-> id. Clearing it when full is enough: it only saves hashing and lookups. */
export class DidCache {
  private byDid = new Map<string, DidInfo>()
  private byKey = new Map<string, string>()

  constructor(private readonly max = 500_000) {}

  info(did: string): DidInfo {
    let info = this.byDid.get(did)
    if (!info) {
      if (this.byDid.size >= this.max) this.clear()
      const id = didId(did)
      info = { did, id, key: id.toString('latin1') }
      this.byDid.set(did, info)
      this.byKey.set(info.key, did)
    }
    return info
  }

  /** The DID of an id key, if seen. */
  didOf(key: string): string | undefined {
    return this.byKey.get(key)
  }

  remember(key: string, did: string): void {
    if (this.byKey.size >= this.max) this.clear()
    this.byKey.set(key, did)
  }

  private clear(): void {
    this.byDid.clear()
    this.byKey.clear()
  }
}
