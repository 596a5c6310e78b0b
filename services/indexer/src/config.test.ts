import { hostname } from 'node:os'
import { describe, expect, it } from 'vitest'
import { toConfig } from './config.js'

describe('indexer config', () => {
  it('names the consumer after the PM2 instance, so that a restart keeps the name', () => {
    expect(toConfig({ NODE_APP_INSTANCE: '2' }).consumer).toBe(`${hostname()}-2`)
    expect(toConfig({}).consumer).toBe(`${hostname()}-${process.pid}`)
    expect(toConfig({ NODE_APP_INSTANCE: 'x y' }).consumer).toBe(`${hostname()}-${process.pid}`)
    expect(toConfig({ NODE_APP_INSTANCE: '2', INDEXER_CONSUMER: 'mine' }).consumer).toBe('mine')
  })

  it('reads the roll-up grace and rejects a grace under one hour', () => {
    expect(toConfig({}).rollupGraceHours).toBe(6)
    expect(toConfig({ INDEX_ROLLUP_GRACE_HOURS: '24' }).rollupGraceHours).toBe(24)
    expect(() => toConfig({ INDEX_ROLLUP_GRACE_HOURS: '0' })).toThrow(/INDEX_ROLLUP_GRACE_HOURS/)
  })
})
