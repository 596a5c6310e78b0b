import { WireError } from '@circles/redis-wire'
import { ReplyError } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { classifyRedisError, type RedisErrorAction, type RedisErrorKind } from './errors.js'

function reply(message: string): Error {
  return new ReplyError(message)
}

function named(name: string, message: string, code?: string): Error {
  const err = new Error(message) as Error & { code?: string }
  err.name = name
  if (code) err.code = code
  return err
}

function execAbort(previous: Error): Error {
  const err = reply('EXECABORT Transaction discarded because of previous errors.')
  ;(err as Error & { previousErrors: Error[] }).previousErrors = [previous]
  return err
}

// Messages as Redis 7.0 sends them (the function ones captured from FCALL on redis-server 7.0.15).
const CASES: [string, unknown, RedisErrorKind, RedisErrorAction][] = [
  ['OOM', reply("OOM command not allowed when used memory > 'maxmemory'."), 'oom', 'back-off'],
  [
    'OOM inside a refused MULTI',
    execAbort(reply("OOM command not allowed when used memory > 'maxmemory'.")),
    'oom',
    'back-off',
  ],
  [
    'BUSY script',
    reply('BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.'),
    'busy',
    'back-off',
  ],
  [
    'BUSYGROUP is not BUSY',
    reply('BUSYGROUP Consumer Group name already exists'),
    'other',
    'back-off',
  ],
  [
    'READONLY replica',
    reply("READONLY You can't write against a read only replica."),
    'readonly',
    'back-off',
  ],
  ['LOADING', reply('LOADING Redis is loading the dataset in memory'), 'loading', 'back-off'],
  [
    'MASTERDOWN',
    reply('MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no'),
    'masterdown',
    'back-off',
  ],
  [
    'TRYAGAIN',
    reply('TRYAGAIN Multiple keys request during rehashing of slot'),
    'tryagain',
    'back-off',
  ],
  ['CLUSTERDOWN', reply('CLUSTERDOWN The cluster is down'), 'clusterdown', 'back-off'],
  [
    'MISCONF',
    reply(
      'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.',
    ),
    'misconf',
    'back-off',
  ],
  ['NOREPLICAS', reply('NOREPLICAS Not enough good replicas to write.'), 'noreplicas', 'back-off'],
  ['UNBLOCKED', reply('UNBLOCKED the stream key no longer exists'), 'unblocked', 'back-off'],
  [
    'NOPERM',
    reply("NOPERM this user has no permissions to run the 'fcall' command"),
    'denied',
    'back-off',
  ],
  ['NOAUTH', reply('NOAUTH Authentication required.'), 'denied', 'back-off'],
  [
    'NOGROUP on XREADGROUP',
    reply(
      "NOGROUP No such key 'c:{fh}:events' or consumer group 'indexer' in XREADGROUP with GROUP option",
    ),
    'nogroup',
    'recreate-group',
  ],
  [
    'NOGROUP on XAUTOCLAIM',
    reply("NOGROUP No such key 's' or consumer group 'g'"),
    'nogroup',
    'recreate-group',
  ],
  ['NOSCRIPT', reply('NOSCRIPT No matching script. Please use EVAL.'), 'noscript', 'reload'],
  ['function flushed', reply('ERR Function not found'), 'noscript', 'reload'],
  [
    'WRONGTYPE',
    reply('WRONGTYPE Operation against a key holding the wrong kind of value'),
    'data',
    'isolate',
  ],
  [
    'WRONGTYPE inside the function',
    reply(
      'WRONGTYPE Operation against a key holding the wrong kind of value script: wt, on @user_function:2.',
    ),
    'data',
    'isolate',
  ],
  [
    'runtime error inside the function',
    reply(
      "ERR user_function:3: attempt to index local 'x' (a nil value) script: boom, on @user_function:3.",
    ),
    'data',
    'isolate',
  ],
  ['another ERR', reply('ERR max number of clients reached'), 'other', 'back-off'],
  ['an unknown code', reply('SOMETHING new'), 'other', 'back-off'],
  [
    'the writer lost its connection',
    new WireError('connection to Redis closed'),
    'connection',
    'back-off',
  ],
  [
    'connection refused',
    named('Error', 'connect ECONNREFUSED 127.0.0.1:6379', 'ECONNREFUSED'),
    'connection',
    'back-off',
  ],
  ['connection reset', named('Error', 'read ECONNRESET', 'ECONNRESET'), 'connection', 'back-off'],
  ['ioredis closed', new Error('Connection is closed.'), 'connection', 'back-off'],
  [
    'ioredis offline',
    new Error("Stream isn't writeable and enableOfflineQueue options is false"),
    'connection',
    'back-off',
  ],
  ['ioredis timeout', new Error('Command timed out'), 'connection', 'back-off'],
  [
    'ioredis retries',
    named('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 3).'),
    'connection',
    'back-off',
  ],
  [
    'protocol',
    named('ParserError', 'Protocol error, got "x" as reply type byte'),
    'connection',
    'back-off',
  ],
  [
    'a bug of ours',
    new TypeError("Cannot read properties of undefined (reading 'length')"),
    'other',
    'back-off',
  ],
  ['not an Error', 'a string', 'other', 'back-off'],
]

describe('classifyRedisError', () => {
  it.each(CASES)('%s', (_name, err, kind, action) => {
    expect(classifyRedisError(err)).toEqual({ kind, action })
  })

  it('makes only data errors poison: every server condition keeps the entries', () => {
    const poison = CASES.filter(([, , , action]) => action === 'isolate').map(([, , kind]) => kind)
    expect(new Set(poison)).toEqual(new Set(['data']))
  })
})
