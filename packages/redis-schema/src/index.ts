import { isIPv4 } from 'node:net'
import { isValidDid, isValidHandle } from '@circles/core'

// Every Redis name the system uses is built here, under one configurable prefix, so that a reader (or
// RedisInsight) can find all of them in one file, and a test can run under a private prefix.
//
// Cluster safety: every command that touches several keys keeps them in one hash slot. The firehose's
// stream, cursor and metrics share the `{fh}` tag, because its MULTI/EXEC writes the batch's entries and
// the cursor together. Per-account keys carry the account's tag, so one account's reads stay in one slot.

export class SchemaError extends Error {
  override name = 'SchemaError'
}

const PREFIX_RE = /^[A-Za-z0-9_:.-]{0,64}$/

export function assertPrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix)) {
    throw new SchemaError(
      `invalid key prefix ${JSON.stringify(prefix)}: use up to 64 of [A-Za-z0-9_:.-]`,
    )
  }
  return prefix
}

function did(value: string): string {
  if (!isValidDid(value)) throw new SchemaError(`refusing to build a key from an invalid DID`)
  return value
}

function hex(value: string): string {
  if (!/^[0-9a-f]{1,64}$/.test(value))
    throw new SchemaError(`refusing to build a key from a non-hex id`)
  return value
}

function tag(value: string): string {
  if (!/^[0-9a-z]{1,8}$/.test(value))
    throw new SchemaError(`refusing to build a key from a bad slot tag`)
  return value
}

function handle(value: string): string {
  if (!isValidHandle(value)) throw new SchemaError(`refusing to build a key from an invalid handle`)
  return value.toLowerCase()
}

const IPV6_64 = /^[0-9a-f]{4}(?::[0-9a-f]{4}){3}::\/64$/

/** A client's rate-limit bucket: an IPv4 address, or an IPv6 /64 written out in full (services/fart). */
function addressBucket(value: string): string {
  if (!isIPv4(value) && !IPV6_64.test(value)) {
    throw new SchemaError(`refusing to build a key from something that is not an address bucket`)
  }
  return value
}

function int(value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new SchemaError(`refusing to build a key from ${value}`)
  }
  return value
}

export type RedisSchema = ReturnType<typeof createSchema>

/** One stream shard's keys (`schema.shard(k)`); its consumer groups keep the names `indexerGroup`, `botGroup`. */
export interface ShardKeys {
  /** The shard's number, 0 .. FIREHOSE_SHARDS-1. */
  index: number
  stream: string
  cursor: string
  deadLetters: string
}

function shardKeys(p: string, k: number): ShardKeys {
  const t = k === 0 ? '{fh}' : `{fh-${k}}`
  return {
    index: k,
    stream: `${p}${t}:events`,
    cursor: `${p}${t}:cursor`,
    deadLetters: `${p}${t}:dead-letters`,
  }
}

/** `schema.shard(k)` for k = 0 .. shards-1. */
export function shardsOf(schema: RedisSchema, shards: number): ShardKeys[] {
  return Array.from({ length: shards }, (_, k) => schema.shard(k))
}

/** The four long-term hashes of an account (`schema.longTerm`): rolled-up sent/received, backfilled sent/received. */
export const LONG_TERM_SIDES = ['s', 'r', 'bs', 'br'] as const
export type LongTermSide = (typeof LONG_TERM_SIDES)[number]
/** The partner's hash that mirrors a side: a row sent by A to B is in A's `s` and B's `r`. */
export const MIRROR_SIDE: Record<LongTermSide, LongTermSide> = {
  s: 'r',
  r: 's',
  bs: 'br',
  br: 'bs',
}

/** The BullMQ queue of repo backfills (packages/backfill), under `bullPrefix` like the scheduler's queues. */
export const BACKFILL_QUEUE = 'backfill'

/**
 * The scheduler's job kinds, one BullMQ queue each (`schema.queues`): here, with the queue names, because the
 * scheduler runs them and the API's queue board shows them, and neither imports the other.
 */
export const JOB_KINDS = ['rollup', 'prune', 'stats', 'snapshots'] as const
export type JobKind = (typeof JOB_KINDS)[number]

/** @param prefix prepended to every key, e.g. `circles:` (validated: no braces, spaces or wildcards). */
export function createSchema(prefix: string) {
  const p = assertPrefix(prefix)
  return {
    prefix: p,
    /** Pattern matching every key of this prefix (for tests and cleanup). */
    all: `${p}*`,

    // --- firehose -> indexer -----------------------------------------------------------------------
    /** Stream of event batches; each entry has field `e` (newline-separated event lines, see core codec). */
    eventStream: `${p}{fh}:events`,
    /** Seq of the last relay commit whose events are in the stream; written in the same MULTI as them. */
    firehoseCursor: `${p}{fh}:cursor`,
    /** Hash of firehose counters and gauges (events, interactions, rejections by reason, reconnects...). */
    firehoseMetrics: `${p}{fh}:metrics`,
    /** The indexer's consumer group on `eventStream`. */
    indexerGroup: 'indexer',
    /**
     * Stream of the indexer's dead letters: entries it gave up because their own data cannot be applied (a
     * line that does not decode, a key of the wrong type), each with the entry's fields then `id`, `error`,
     * `consumer` and `at` (ms); trimmed to about INDEXER_DEAD_LETTER_MAXLEN entries. In the `{fh}` slot so
     * that copying an entry here and acknowledging it go in one MULTI.
     */
    indexerDeadLetters: `${p}{fh}:dead-letters`,
    /**
     * The keys of stream shard `k` (FIREHOSE_SHARDS): shard 0 is `eventStream`, `firehoseCursor` and
     * `indexerDeadLetters` themselves (one shard is the layout from before sharding, unchanged); shard k >= 1
     * has the tag `{fh-k}`, so each shard's stream, cursor and dead letters share one slot (its batch is one
     * MULTI, a dead letter's copy and XACK another) while shards spread over the primaries. `{fh-1}`, not
     * `{fh1}`: with the default slot layout of 3 primaries, `{fh1}` sits on the same one as `{fh}`.
     */
    shard: (k: number): ShardKeys => shardKeys(p, int(k)),

    // --- per-account keys (indexer, read package) --------------------------------------------------
    /** Hash tag of one account: all of its keys share it, so multi-key commands stay in one slot. */
    accountTag: (d: string) => `{${did(d)}}`,
    // (indexer keys go here)
    /** Interaction log of one account, both directions, binary records (see packages/interaction-index). */
    accountLog: (d: string) => `${p}{${did(d)}}:log`,
    /** Spill log of one busy account for one hour (hours since the epoch). */
    accountHourLog: (d: string, hour: number) => `${p}{${did(d)}}:log:${int(hour)}`,
    /** `accountHourLog(d, hour)` is this followed by the hour in decimal (the writer encodes it so). */
    accountHourLogPrefix: (d: string) => `${p}{${did(d)}}:log:`,
    /** Seconds of an account's purge (deleted/taken down): creates at or before it are refused. With TTL. */
    accountPurged: (d: string) => `${p}{${did(d)}}:purged`,
    /**
     * Scratch key of the index script, in the slot of the account named: a log grown by APPEND is copied
     * here and renamed back, which reallocates it at its exact size. Exists only inside one script call.
     */
    accountScratch: (d: string) => `${p}{${did(d)}}:scratch`,
    /** Hash bucket of the DID table: 8-byte DID id -> DID (ids are hashes of DIDs, see interaction-index). */
    didTable: (bucket: number) => `${p}dids:${int(bucket)}`,
    /**
     * Counter of DID table reclaims: the scheduler's forget step and the prune's table sweep INCR it after
     * deleting entries and before checking those accounts for data once more. An index writer reads it after
     * its appends (in the same pipeline) and, when it moved, writes again the entries it remembers having
     * written (interaction-index write/table-memo.ts); the roll-up's fold reads it before an hour's entries and after its blobs, and
     * writes the entries again when it moved (services/scheduler/src/fold.ts).
     */
    didTableEpoch: `${p}dids:epoch`,
    /**
     * The next DID table bucket (0 .. DID_TABLE_BUCKETS-1, decimal) the prune's sweep reads: each run
     * reclaims the entries of accounts without data in the buckets from here on, and moves it past them,
     * back to 0 after the last (services/scheduler/src/table-sweep.ts).
     */
    didTableSweepCursor: `${p}dids:sweep-cursor`,
    /**
     * Hash DID -> ms of the accounts whose entries a sweep batch is reclaiming, written (fenced) before its
     * HDEL and removed after its second check: a run that died in between leaves them here, and the next
     * run checks them first, which writes back the entry of any that has data.
     */
    didTableSweepPending: `${p}dids:sweep-pending`,
    /** Set of author ids (int64) with interactions in one hour, sharded: the scheduler's roll-up scan. */
    hourAuthors: (hour: number, shard: number) => `${p}hour:${int(hour)}:${int(shard)}`,
    /** Set of hours that have an `hourAuthors` index. */
    indexHours: `${p}index:hours`,
    /** Hash of indexer counters and gauges (rate, lag, pending), written by every indexer process. */
    indexerMetrics: `${p}indexer:metrics`,

    // --- shared between services ---------------------------------------------------------------------
    /** Cached AppView profile (JSON, with TTL). The indexer deletes it on an #identity event. */
    profile: (d: string) => `${p}profile:${did(d)}`,
    /**
     * Sorted set (all scores 0, read by ZRANGEBYLEX) of `h:<handle>\0<did>` and `n:<lowercased display
     * name>\0<did>`, written beside each cached profile: the page's suggestions while typing. Members may
     * outlive their profile; readers check it is still cached and still says the same.
     */
    profileNames: `${p}profile-names`,
    /** Sorted set: each `profileNames` member -> ms it was last written, so the oldest can be trimmed. */
    profileNamesSeen: `${p}profile-names:seen`,
    /**
     * Set of DIDs that opted out, for any reason below: no circle of their own, never in anyone else's, no
     * stored interactions. Kept equal to the union of the reasons by one script (opt-outs.ts).
     */
    optOuts: `${p}optouts`,
    // The reasons, in the slot of `optOuts` (tagged with its whole name), so the script touches one slot:
    /** Set of DIDs an admin opted out (the override: it holds whatever the account does). */
    optOutsAdmin: `${p}optouts:admin:{${p}optouts}`,
    /** Hash DID -> rkey of the account's `app.bsky.graph.block` of SERVICE_DID (deleting it opts back in). */
    optOutsBlocks: `${p}optouts:blocks:{${p}optouts}`,
    /** Set of DIDs whose profile carries the `!no-unauthenticated` self-label. */
    optOutsLabels: `${p}optouts:labels:{${p}optouts}`,
    /**
     * Set of the opted-out DIDs whose index the indexer has purged (and keeps closed to them): the indexer
     * compares it with `optOuts` to purge new opt-outs and reopen the index to accounts that opted back in.
     */
    optOutsApplied: `${p}optouts:applied:{${p}optouts}`,
    /**
     * Sorted set DID -> ms of a purge (deleted, taken down, opted out), added by the indexer once the account's
     * 48-hour index is purged. The scheduler forgets everything else about it (long-term aggregates both
     * ways, snapshots, caches, lists, its DID table entry) and then removes the member (if its score is still
     * the one it read).
     */
    forgetQueue: `${p}privacy:forget`,
    /**
     * Sorted set of the DID ids (16 hex digits) whose DID table entries the forget step reclaimed -> ms of
     * the reclaim, kept for the live window after it: each roll-up run reclaims again those entries that
     * came back without data (a create the purge mark refused still writes its accounts' entries). Ids,
     * not DIDs: nothing here names an account unless its entry came back.
     */
    forgetRechecks: `${p}privacy:forget-rechecks`,
    /** Set of DIDs tracked for daily snapshots (managed through the API's admin routes). */
    tracked: `${p}tracked`,
    /** Set once the two lists above are whole: its absence tells the API that Redis lost them (durable-lists.ts). */
    listsSeeded: `${p}lists:seeded`,
    /** Sorted set: DID -> ms of its last circle request (snapshots also track these for 7 days). */
    circleRequests: `${p}circle-requests`,
    /**
     * ms of the earliest event the live index took from the stream (SET NX by the indexer): what happened
     * before it comes only from repo backfills, which skip what the live stream delivers from then on.
     */
    liveSince: `${p}index:live-since`,
    /** Hash: one repo's backfill (state, rev, at, records, bytes, reason), see packages/backfill. */
    backfillRepo: (d: string) => `${p}backfill:{${did(d)}}:repo`,
    /** Hash: one account's circle backfill (its repo and its top partners'): state, done, total, reason, at. */
    backfillAccount: (d: string) => `${p}backfill:{${did(d)}}:account`,
    /** Pattern matching every backfill state key (the forget step's cleanup, tests). */
    backfillPattern: `${p}backfill:*`,
    /** Hash of backfill counters: repos fetched, bytes, records folded, failures by reason. */
    backfillStats: `${p}backfill:stats`,
    /** Global stats document (JSON) written by the scheduler, read by the API in one round trip. */
    globalStats: `${p}stats:global`,
    /** Scheduler heartbeat (ms timestamp, with TTL): `pnpm doctor` and `/readyz` read it. */
    schedulerHeartbeat: `${p}scheduler:heartbeat`,
    // (scheduler keys go here)
    /** BullMQ `prefix` option: every queue key becomes `<prefix>{bull}:<queue>:...`, one slot for all queues. */
    bullPrefix: `${p}{bull}`,
    /** One BullMQ queue per job kind (`JOB_KINDS`). */
    queues: {
      rollup: 'rollup',
      prune: 'prune',
      stats: 'stats',
      snapshots: 'snapshots',
    } satisfies Record<JobKind, string>,
    /** Mutex of one job kind (token, with expiry): no two runs of a kind at once, whatever the workers. */
    schedulerLock: (kind: string) => `${p}scheduler:lock:${kind}`,
    /**
     * Fencing counter of one job kind's lock: INCR in the same script as the lock's SET NX, so each holder
     * gets a number above every earlier holder's. Its hash tag is the whole lock key, which puts it in the
     * lock's cluster slot (an untagged key hashes as a whole).
     */
    schedulerFenceCounter: (kind: string) =>
      `${p}scheduler:fence-counter:{${p}scheduler:lock:${kind}}`,
    /**
     * The roll-up holder's fencing number, as claimed in one cluster slot (the tag is a short string the
     * scheduler picks per slot): every roll-up write checks the copy in its own slot in the same script.
     */
    rollupFence: (slotTag: string) => `${p}scheduler:rollup-fence:{${tag(slotTag)}}`,
    /** Pattern matching every roll-up fence key (16384 of them once a roll-up has written). */
    rollupFencePattern: `${p}scheduler:rollup-fence:*`,
    /**
     * The prune holder's fencing number, as claimed in one cluster slot, like `rollupFence` but apart from
     * it (a prune holder must not fence out the roll-up's): the prune's DID table sweep checks it in every
     * HDEL of the table and every write of `didTableSweepPending`.
     */
    pruneFence: (slotTag: string) => `${p}scheduler:prune-fence:{${tag(slotTag)}}`,
    /** Pattern matching every prune fence key (16384 of them once a prune has swept the DID table). */
    pruneFencePattern: `${p}scheduler:prune-fence:*`,
    /** Highest hour (hours since the epoch) folded into the long-term aggregates; every lower hour is too. */
    rollupCursor: `${p}scheduler:rollup-cursor`,
    /**
     * Long-term daily aggregates of one account: hash day -> packed counts. `s` = sent, `r` = received, as
     * the roll-up folded them from the live index; `bs`, `br` the same from repo backfills (packages/backfill),
     * apart so that each has one writer and its own exactly-once rule. Readers add the four.
     */
    longTerm: (d: string, dir: LongTermSide) => `${p}lt:{${did(d)}}:${dir}`,
    /** Pattern matching every long-term aggregate key (for the pruning scan). */
    longTermPattern: `${p}lt:*`,
    /**
     * Hash day -> a token that changes whenever a backfill writes that day of the account's `bs` or `br` hash
     * (a replacement can keep a blob's length, so readers that remember a day by its blobs' lengths need
     * it too). Fields are never removed: the key expires no earlier than either hash, and takes them along.
     * Outside `longTermPattern`: it is no hash of day blobs.
     */
    longTermVersion: (d: string) => `${p}lt-version:{${did(d)}}`,
    /** Daily snapshots of one tracked account: hash day -> JSON counts sent and received by kind. */
    snapshot: (d: string) => `${p}snap:{${did(d)}}`,
    /** Pattern matching every snapshot key (for the pruning scan). */
    snapshotPattern: `${p}snap:*`,
    // --- api (services/fart) ------------------------------------------------------------------------
    /** Cached circle JSON (with TTL), one per actor and parameter variant (a hex digest of the query). */
    circle: (d: string, variant: string) => `${p}circle:{${did(d)}}:${hex(variant)}`,
    /** Single-flight lock for one circle computation: SET NX PX with a random token, so it always expires. */
    circleLock: (d: string, variant: string) => `${p}circle-lock:{${did(d)}}:${hex(variant)}`,
    /** Rendered circle image (PNG bytes or SVG text, with TTL), keyed like `circle`. */
    circleImage: (d: string, variant: string) => `${p}circle-img:{${did(d)}}:${hex(variant)}`,
    /** Pattern matching every `circle`, `circleLock` and `circleImage` key (the forget step's SCAN). */
    circleCachePattern: `${p}circle*`,
    /** What `circle`, `circleLock` and `circleImage` keys of one actor start with (a variant follows). */
    circleCachePrefixes: (d: string) => [
      `${p}circle:{${did(d)}}:`,
      `${p}circle-lock:{${did(d)}}:`,
      `${p}circle-img:{${did(d)}}:`,
    ],
    /** Counter bumped on every opt-out change: cached circles made under an older value are not served. */
    optOutsVersion: `${p}optouts:version`,
    /** Handle -> DID resolved through the AppView (with TTL). Handles are stored lower-cased. */
    handleDid: (h: string) => `${p}handle:${handle(h)}`,
    /** Avatar thumbnail bytes fetched for drawn circles (with TTL), keyed by a hex digest of the URL. */
    avatar: (digest: string) => `${p}avatar:${hex(digest)}`,
    /** Key prefix of the API's rate-limit counters (for tests and cleanup). */
    rateLimitPrefix: `${p}ratelimit:`,
    /**
     * Requests of one client address (an IPv4 address or an IPv6 /64, validated) in one fixed window
     * (window number = ms / window length), with a TTL of one window: the key space is bounded by the clients
     * of the last window or two, whatever addresses they claim.
     */
    rateLimit: (bucket: string, window: number) =>
      `${p}ratelimit:${addressBucket(bucket)}:${int(window)}`,
    /** Pub/sub channel: a circle computation ended (message: its `circle` key), so waiters need not poll. */
    circleReadyChannel: `${p}circle-ready`,
    /** Pub/sub channel: the opt-out set changed, so API processes drop their in-process circle copies. */
    optOutsChannel: `${p}optouts:changed`,
    // (api keys go here)

    // --- bot (services/bot) ------------------------------------------------------------------------
    /** The bot's consumer group on `eventStream` (it reads the mention lines, `m`, and skips the rest). */
    botGroup: 'bot',
    /**
     * The bot account's session (AES-256-GCM sealed JSON: tokens and their expiry), with the refresh token's
     * expiry as TTL. One per bot account, shared by every bot process.
     */
    botSession: (d: string) => `${p}bot:{${did(d)}}:session`,
    /** Who may log in or refresh the session now (SET NX PX with a random token): one process, others wait. */
    botSessionLock: (d: string) => `${p}bot:{${did(d)}}:session-lock`,
    /**
     * One mention's reply state (hash: state intent|posted|done|refused, rkey, reason, at), keyed by a hex
     * digest of the mention's AT-URI and kept for a few days: written before the PDS write, so a restart
     * retries the same rkey instead of answering twice.
     */
    botReply: (digest: string) => `${p}bot:reply:${hex(digest)}`,
    /** Replies to one author in one fixed window (window number = ms / window length), with TTL. */
    botAuthorRate: (d: string, window: number) => `${p}bot:rate:{${did(d)}}:${int(window)}`,
    /** Replies by the bot in one fixed window, with TTL. */
    botGlobalRate: (window: number) => `${p}bot:rate:all:${int(window)}`,
    /** Hash of bot counters: mentions seen, replies posted, refused by reason, session logins/refreshes. */
    botMetrics: `${p}bot:metrics`,
  }
}
