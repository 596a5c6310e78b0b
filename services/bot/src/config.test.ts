import { ConfigError } from '@circles/config'
import { describe, expect, it } from 'vitest'
import { toConfig } from './config.js'

const KEY = 'ab'.repeat(32)
const full = {
  BOT_DID: 'did:plc:ewvi7nxzyoun6zhxrhs64oiz',
  BOT_IDENTIFIER: 'circles.bsky.social',
  BOT_APP_PASSWORD: 'abcd-efgh-ijkl-mnop',
  BOT_SESSION_KEY: KEY,
}

describe('bot config', () => {
  it('takes the account and the defaults', () => {
    const c = toConfig(full)
    expect(c.account?.sessionKey).toEqual(Buffer.from(KEY, 'hex'))
    expect(c).toMatchObject({ enabled: true, apiUrl: 'http://127.0.0.1:8080', authorLimit: 1 })
  })

  it.each(['BOT_DID', 'BOT_IDENTIFIER', 'BOT_APP_PASSWORD', 'BOT_SESSION_KEY'] as const)(
    'refuses to start without %s, naming it',
    (name) => {
      expect(() => toConfig({ ...full, [name]: undefined })).toThrow(new RegExp(name))
    },
  )

  it('refuses a session key that is not 32 bytes of hex, without echoing it', () => {
    const bad = 'secret-but-wrong'
    expect(() => toConfig({ ...full, BOT_SESSION_KEY: bad })).toThrow(ConfigError)
    try {
      toConfig({ ...full, BOT_SESSION_KEY: bad })
    } catch (err) {
      expect((err as Error).message).not.toContain(bad)
    }
  })

  it('needs nothing when disabled', () => {
    expect(toConfig({ BOT_ENABLED: 'false' })).toMatchObject({ enabled: false, account: null })
  })
})
