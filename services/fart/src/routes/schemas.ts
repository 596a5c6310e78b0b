import { Type } from '@fastify/type-provider-typebox'
import { RINGS_PATTERN, WEIGHTS_PATTERN, WINDOW_PATTERN } from '../params.js'

// Shared TypeBox schemas: they validate input before any handler runs and document the API at /docs.

export const ErrorBody = Type.Object(
  { statusCode: Type.Integer(), error: Type.String(), message: Type.String() },
  {
    $id: 'Error',
    description: 'Every error: the status, a short name and a message that says what is wrong',
  },
)

/**
 * 503 for Redis trouble, on every route that needs Redis: unreachable, loading its data after a restart,
 * busy with a long script, or refusing a write the request cannot do without. Never a 500 for these.
 */
export const Unavailable = Type.Object(
  { statusCode: Type.Integer(), error: Type.String(), message: Type.String() },
  {
    description:
      'Try again after Retry-After: Redis is unreachable, loading or busy, or refuses a write this request needs ' +
      '(on actor routes also: handles cannot be resolved right now, use the DID; on /v1/stats: no stats yet)',
    headers: {
      'retry-after': { type: 'integer', description: 'seconds to wait before trying again' },
    },
  },
)

export const ActorParams = Type.Object({
  actor: Type.String({
    minLength: 1,
    maxLength: 260,
    description:
      'A handle (alice.bsky.social, optional leading @) or a DID (did:plc:..., did:web:...)',
  }),
})

export const Counts = Type.Object({
  like: Type.Number(),
  repost: Type.Number(),
  reply: Type.Number(),
  quote: Type.Number(),
})

export const CircleQuery = Type.Object(
  {
    window: Type.Optional(
      Type.String({
        pattern: WINDOW_PATTERN,
        default: '48h',
        description: '1h..48h from the live index, or 7d, 30d, 90d from the daily aggregates',
      }),
    ),
    direction: Type.Optional(
      Type.Union([Type.Literal('sent'), Type.Literal('received'), Type.Literal('both')], {
        default: 'both',
        description:
          'sent (whom the actor interacts with), received (who interacts with the actor) or both',
      }),
    ),
    weights: Type.Optional(
      Type.String({
        pattern: WEIGHTS_PATTERN,
        maxLength: 64,
        description:
          'Per-kind weights, default reply:3,quote:3,repost:2,like:1; kinds left out keep their default',
      }),
    ),
    nolikes: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'Leave likes out (like weight 0): only active interactions',
      }),
    ),
    rings: Type.Optional(
      Type.String({
        pattern: RINGS_PATTERN,
        maxLength: 16,
        description:
          'Ring sizes from the inside out, default 8,15,26 (at most 5 rings, 50 per ring, 100 in all)',
      }),
    ),
  },
  { additionalProperties: false },
)

const Member = Type.Object({
  did: Type.String(),
  handle: Type.Optional(Type.String()),
  displayName: Type.Optional(Type.String()),
  avatar: Type.Optional(Type.String()),
  score: Type.Number(),
  sent: Counts,
  received: Counts,
})

export const BackfillBody = Type.Object(
  {
    state: Type.Union(
      [
        Type.Literal('none'),
        Type.Literal('queued'),
        Type.Literal('running'),
        Type.Literal('done'),
        Type.Literal('failed'),
      ],
      {
        description:
          'none: never backfilled (not queued: BACKFILL_ON_REQUEST is off, or BACKFILL_MAX_WAITING backfills ' +
          'already wait); queued; running; done; failed (see reason)',
      },
    ),
    progress: Type.Number({
      minimum: 0,
      maximum: 1,
      description:
        'repos read of those planned (the account’s own and its top partners’), 1 once done',
    }),
    reason: Type.Optional(
      Type.String({ description: 'failed only: why (a repo-source reason code, or internal)' }),
    ),
  },
  {
    description:
      'The account’s history read from its own repo (and its top partners’ repos): until done, long ' +
      'windows hold only what the live stream showed; the circle is computed again once it is done',
  },
)

export const CircleBody = Type.Object({
  actor: Type.Object({
    did: Type.String(),
    handle: Type.Optional(Type.String()),
    displayName: Type.Optional(Type.String()),
    avatar: Type.Optional(Type.String()),
  }),
  window: Type.String(),
  direction: Type.String(),
  weights: Counts,
  ringSizes: Type.Array(Type.Integer()),
  rings: Type.Array(Type.Object({ ring: Type.Integer(), members: Type.Array(Member) })),
  profilesComplete: Type.Boolean({
    description:
      'false when the AppView was unreachable: members carry DIDs only, profiles fill in on a later request',
  }),
  generatedAt: Type.String(),
  backfill: BackfillBody,
})

export const InteractionsQuery = Type.Object(
  {
    window: Type.Optional(
      Type.String({
        pattern: '^(?:[1-9]|[1-3][0-9]|4[0-8])h$',
        default: '48h',
        description: '1h..48h',
      }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
    cursor: Type.Optional(
      Type.String({
        maxLength: 128,
        pattern: '^[A-Za-z0-9_=-]+$',
        description: 'From the previous page',
      }),
    ),
  },
  { additionalProperties: false },
)

export const InteractionsBody = Type.Object({
  actor: Type.String(),
  window: Type.String(),
  partners: Type.Array(Member),
  cursor: Type.Optional(Type.String()),
})

export const DidParams = Type.Object({
  did: Type.String({ minLength: 8, maxLength: 2048, description: 'did:plc:... or did:web:...' }),
})

export const HistoryQuery = Type.Object(
  {
    days: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 90,
        default: 30,
        description: 'an integer from 1 to 90: how many days, up to today (UTC)',
      }),
    ),
    top: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 10,
        default: 5,
        description: 'an integer from 0 to 10: how many top partners per day',
      }),
    ),
  },
  { additionalProperties: false },
)

const HistoryPartner = Type.Object({
  did: Type.String(),
  handle: Type.Optional(Type.String()),
  displayName: Type.Optional(Type.String()),
  avatar: Type.Optional(Type.String()),
  sent: Counts,
  received: Counts,
})

export const HistoryBody = Type.Object({
  actor: Type.Object({
    did: Type.String(),
    handle: Type.Optional(Type.String()),
    displayName: Type.Optional(Type.String()),
    avatar: Type.Optional(Type.String()),
  }),
  days: Type.Integer(),
  top: Type.Integer(),
  completeThrough: Type.Union([Type.String(), Type.Null()], {
    description:
      'The newest day the roll-up has folded whole (YYYY-MM-DD), null before its first run',
  }),
  profilesComplete: Type.Boolean({
    description: 'false when the AppView was unreachable: partners carry DIDs only',
  }),
  history: Type.Array(
    Type.Object({
      date: Type.String({ description: 'UTC day, YYYY-MM-DD' }),
      complete: Type.Boolean({
        description:
          'true once the roll-up folded all 24 hours; a partial day lacks the hours still in the live index',
      }),
      foldedHours: Type.Integer({ minimum: 0, maximum: 24 }),
      sent: Counts,
      received: Counts,
      partners: Type.Array(HistoryPartner, {
        description: 'The day’s top partners by interactions both ways, most first',
      }),
    }),
    { description: 'One entry per day, oldest first; a day with nothing has zeros' },
  ),
})
