import { tidFromMs } from '@circles/core'
import type { RepoRecord } from '../src/classify.js'

// Repo records as @atproto/repo hands them out (lex values: URIs as strings), made for a given time.

let clock = 0
/** A TID for `ms`, unique within the test run (the clock id varies). */
export function tidAt(ms: number): string {
  clock = (clock + 1) % 1024
  return tidFromMs(ms, clock)
}

function ref(did: string, ms: number) {
  return { uri: `at://${did}/app.bsky.feed.post/${tidAt(ms - 60_000)}`, cid: 'bafyreib2rxk3rybk' }
}

export function like(subject: string, ms: number, rkey = tidAt(ms)): RepoRecord {
  return {
    collection: 'app.bsky.feed.like',
    rkey,
    record: { $type: 'app.bsky.feed.like', subject: ref(subject, ms), createdAt: iso(ms) },
  }
}

export function repost(subject: string, ms: number): RepoRecord {
  return {
    collection: 'app.bsky.feed.repost',
    rkey: tidAt(ms),
    record: { $type: 'app.bsky.feed.repost', subject: ref(subject, ms), createdAt: iso(ms) },
  }
}

export function reply(parent: string, ms: number): RepoRecord {
  const r = ref(parent, ms)
  return {
    collection: 'app.bsky.feed.post',
    rkey: tidAt(ms),
    record: {
      $type: 'app.bsky.feed.post',
      text: 'hi',
      reply: { root: r, parent: r },
      createdAt: iso(ms),
    },
  }
}

export function quote(quoted: string, ms: number): RepoRecord {
  return {
    collection: 'app.bsky.feed.post',
    rkey: tidAt(ms),
    record: {
      $type: 'app.bsky.feed.post',
      text: 'look',
      embed: { $type: 'app.bsky.embed.record', record: ref(quoted, ms) },
      createdAt: iso(ms),
    },
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString()
}
