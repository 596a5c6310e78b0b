import { describe, expect, it } from 'vitest'
import type { RepoOp } from './interaction.js'
import { BLOCK, interpretPrivacyOp, NO_UNAUTHENTICATED, PROFILE } from './privacy.js'

const A = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz'
const SERVICE = 'did:plc:circlesserviceaaaaaaaaaa'
const OTHER = 'did:web:bob.example.com'
const T = 1_700_000_000_000

function op(collection: string, action: string, record?: unknown, rkey = '3l3qo2vutsw2b'): RepoOp {
  return { repo: A, action, collection, rkey, record, commitTime: T }
}
const labels = (...vals: unknown[]) => ({
  $type: 'com.atproto.label.defs#selfLabels',
  values: vals.map((val) => ({ val })),
})
const profile = (record: unknown, action = 'update') => op(PROFILE, action, record, 'self')

describe('interpretPrivacyOp', () => {
  it('a block of the service account opts out; a block of anyone else is nothing', () => {
    expect(interpretPrivacyOp(op(BLOCK, 'create', { subject: SERVICE }), SERVICE)).toEqual({
      event: { type: 'block', action: 'create', author: A, rkey: '3l3qo2vutsw2b', time: T },
    })
    expect(interpretPrivacyOp(op(BLOCK, 'create', { subject: OTHER }), SERVICE)).toEqual({
      event: null,
    })
  })

  it('every block delete is passed on (its subject is gone with the record)', () => {
    expect(interpretPrivacyOp(op(BLOCK, 'delete'), SERVICE).event).toEqual({
      type: 'block',
      action: 'delete',
      author: A,
      rkey: '3l3qo2vutsw2b',
      time: T,
    })
  })

  it('without a service account, blocks mean nothing', () => {
    expect(interpretPrivacyOp(op(BLOCK, 'create', { subject: SERVICE }), null)).toEqual({
      event: null,
    })
    expect(interpretPrivacyOp(op(BLOCK, 'delete'), null)).toEqual({ event: null })
  })

  it('a profile with the self-label opts out; without it (or deleted) opts back in', () => {
    const on = interpretPrivacyOp(profile({ labels: labels('porn', NO_UNAUTHENTICATED) }), null)
    expect(on.event).toEqual({ type: 'label', did: A, on: true, time: T })
    const created = interpretPrivacyOp(
      profile({ labels: labels(NO_UNAUTHENTICATED) }, 'create'),
      null,
    )
    expect(created.event).toMatchObject({ on: true })
    expect(interpretPrivacyOp(profile({ displayName: 'x' }), null).event).toMatchObject({
      on: false,
    })
    expect(interpretPrivacyOp(profile({ labels: labels('nudity') }), null).event).toMatchObject({
      on: false,
    })
    expect(interpretPrivacyOp(profile(undefined, 'delete'), null).event).toMatchObject({
      on: false,
    })
  })

  it('bad input changes nothing and says why', () => {
    const cases: [RepoOp, string][] = [
      [op(BLOCK, 'create', { subject: 'not-a-did' }), 'invalid_subject'],
      [op(BLOCK, 'create', { subject: { uri: `at://${SERVICE}` } }), 'invalid_subject'],
      [op(BLOCK, 'create', 'a string'), 'invalid_record'],
      [{ ...op(BLOCK, 'create', { subject: SERVICE }), repo: 'nobody' }, 'invalid_repo'],
      [op(BLOCK, 'create', { subject: SERVICE }, 'bad rkey!'), 'invalid_rkey'],
      [profile({ labels: 'yes' }), 'invalid_labels'],
      [profile({ labels: { values: 'x' } }), 'invalid_labels'],
      [profile({ labels: { values: [{ val: 7 }] } }), 'invalid_labels'],
      [profile({ labels: { values: [NO_UNAUTHENTICATED] } }), 'invalid_labels'],
      [profile([1, 2]), 'invalid_record'],
    ]
    for (const [o, reason] of cases) {
      expect(interpretPrivacyOp(o, SERVICE), reason).toEqual({ event: null, rejected: reason })
    }
  })

  it('a label on a post, a profile at another rkey and a block update are nothing', () => {
    const post = op('app.bsky.feed.post', 'create', {
      text: 'hi',
      labels: labels(NO_UNAUTHENTICATED),
    })
    expect(interpretPrivacyOp(post, SERVICE)).toEqual({ event: null })
    const elsewhere = op(PROFILE, 'update', { labels: labels(NO_UNAUTHENTICATED) }, 'other')
    expect(interpretPrivacyOp(elsewhere, SERVICE)).toEqual({ event: null })
    expect(interpretPrivacyOp(op(BLOCK, 'update', { subject: SERVICE }), SERVICE)).toEqual({
      event: null,
    })
  })
})
