import { describe, expect, it } from 'vitest'
import { parseArgs } from './backfill-cli.js'

describe('pnpm run backfill: its arguments', () => {
  it('takes handles (with or without @) and DIDs, --partners and --resync', () => {
    expect(
      parseArgs([
        '@alice.bsky.social',
        'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa',
        '--partners',
        '5',
        '--resync',
      ]),
    ).toEqual({
      actors: ['alice.bsky.social', 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'],
      partners: 5,
      resync: true,
    })
  })

  it('says what is wrong with bad ones', () => {
    expect(parseArgs([])).toBe('name at least one account')
    expect(parseArgs(['--nope', 'a.test'])).toBe('unknown option --nope')
    expect(parseArgs(['not a handle'])).toBe('not a handle or DID: "not a handle"')
    expect(parseArgs(['--partners', '1001', 'a.test'])).toBe(
      '--partners takes a number from 0 to 1000',
    )
    expect(parseArgs(['--partners'])).toBe('--partners takes a number from 0 to 1000')
  })
})
