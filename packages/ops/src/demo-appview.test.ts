import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DemoAppView, startDemoAppView } from './demo-appview.js'

describe('demo AppView', () => {
  let appview: DemoAppView
  beforeAll(async () => {
    appview = await startDemoAppView([
      { did: 'did:plc:aaa', handle: 'a.test', displayName: 'A' },
      { did: 'did:plc:bbb', handle: 'b.test' },
    ])
  })
  afterAll(() => appview.close())

  it('answers getProfiles by DID or handle, leaving unknown actors out', async () => {
    const res = await fetch(
      `${appview.url}/xrpc/app.bsky.actor.getProfiles?actors=did:plc:aaa&actors=b.test&actors=did:plc:zzz`,
    )
    expect(await res.json()).toEqual({
      profiles: [
        { did: 'did:plc:aaa', handle: 'a.test', displayName: 'A' },
        { did: 'did:plc:bbb', handle: 'b.test' },
      ],
    })
  })

  it('resolves known handles and refuses unknown ones', async () => {
    const ok = await fetch(`${appview.url}/xrpc/com.atproto.identity.resolveHandle?handle=b.test`)
    expect(await ok.json()).toEqual({ did: 'did:plc:bbb' })
    const bad = await fetch(`${appview.url}/xrpc/com.atproto.identity.resolveHandle?handle=x.test`)
    expect(bad.status).toBe(400)
  })
})
