import { describe, expect, it } from 'vitest'
import { createSchema, SchemaError, shardsOf } from './index.js'

describe('schema.shard', () => {
  const schema = createSchema('t:')

  it('keeps shard 0 on the pre-sharding keys, byte for byte (an upgrade needs no migration)', () => {
    expect(schema.shard(0)).toEqual({
      index: 0,
      stream: schema.eventStream,
      cursor: schema.firehoseCursor,
      deadLetters: schema.indexerDeadLetters,
    })
    expect(schema.eventStream).toBe('t:{fh}:events')
  })

  it('gives every other shard its own hash tag, shared by its stream, cursor and dead letters', () => {
    expect(schema.shard(3)).toEqual({
      index: 3,
      stream: 't:{fh-3}:events',
      cursor: 't:{fh-3}:cursor',
      deadLetters: 't:{fh-3}:dead-letters',
    })
    expect(shardsOf(schema, 2).map((s) => s.stream)).toEqual(['t:{fh}:events', 't:{fh-1}:events'])
    expect(() => schema.shard(-1)).toThrow(SchemaError)
    expect(() => schema.shard(1.5)).toThrow(SchemaError)
  })
})
