import { describe, expect, it } from 'vitest'
import {
  ConfigError,
  clusterSeeds,
  envInt,
  METRICS_ENV,
  metricsConfig,
  pickEnv,
  REDIS_ENV,
  redisConfig,
} from './index.js'

describe('pickEnv', () => {
  it('keeps only the named variables that are set, as they are', () => {
    const env = { REDIS_URL: 'redis://db:6379', PORT: ' 80 ', HOME: '/root', EMPTY: '' }
    const raw = pickEnv(env, [...REDIS_ENV, 'PORT', 'EMPTY', 'UNSET'])
    // Blank and padded values stay raw: the helpers trim them and read a blank one as unset.
    expect(raw).toEqual({ REDIS_URL: 'redis://db:6379', PORT: ' 80 ', EMPTY: '' })
    expect(envInt(raw, 'PORT', 8080)).toBe(80)
    expect(envInt(raw, 'EMPTY', 7)).toBe(7)
    expect(redisConfig(raw)).toEqual({
      redisUrl: 'redis://db:6379',
      redisPrefix: 'circles:',
      redisClusterNodes: null,
      firehoseShards: 1,
    })
  })

  it('leaves validation to the helpers, which name the variable', () => {
    const raw = pickEnv({ PORT: 'eighty' }, ['PORT'])
    expect(() => envInt(raw, 'PORT', 8080)).toThrow(ConfigError)
    expect(() => envInt(raw, 'PORT', 8080)).toThrow(/^PORT must be an integer/)
  })
})

describe('metricsConfig', () => {
  it("gives the service's port (plus the instance) on loopback; METRICS_PORT as set; 0 turns it off", () => {
    expect(metricsConfig({}, 9110, 2)).toEqual({ metricsPort: 9112, metricsHost: '127.0.0.1' })
    const set = pickEnv({ METRICS_PORT: '9200', METRICS_HOST: '0.0.0.0' }, METRICS_ENV)
    // An explicit port is the operator's, one per process: no instance added.
    expect(metricsConfig(set, 9110, 2)).toEqual({ metricsPort: 9200, metricsHost: '0.0.0.0' })
    expect(metricsConfig({ METRICS_PORT: '0' }, 9101).metricsPort).toBeNull()
    expect(() => metricsConfig({ METRICS_PORT: '70000' }, 9101)).toThrow(/^METRICS_PORT must be/)
  })
})

describe('REDIS_CLUSTER_NODES', () => {
  it('reads host:port seeds, IPv6 in brackets', () => {
    const raw = pickEnv(
      { REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-b:7001,[::1]:7002 ' },
      REDIS_ENV,
    )
    expect(redisConfig(raw).redisClusterNodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-b', port: 7001 },
      { host: '::1', port: 7002 },
    ])
    expect(redisConfig({ REDIS_CLUSTER_NODES: '' }).redisClusterNodes).toBeNull()
  })

  it('refuses what is not host:port, naming the variable and the item', () => {
    for (const bad of ['10.0.0.1', 'a:0', 'a:70000', 'a:7000,', 'redis://a:7000', 'a b:1']) {
      expect(() => clusterSeeds(bad)).toThrow(ConfigError)
      expect(() => clusterSeeds(bad)).toThrow(/^REDIS_CLUSTER_NODES must be host:port/)
    }
  })
})

describe('FIREHOSE_SHARDS', () => {
  it('is 1 unless set, and takes 1..64', () => {
    expect(redisConfig({}).firehoseShards).toBe(1)
    expect(redisConfig({ FIREHOSE_SHARDS: ' 4 ' }).firehoseShards).toBe(4)
    expect(redisConfig({ FIREHOSE_SHARDS: '64' }).firehoseShards).toBe(64)
  })

  it('refuses anything else, naming the variable', () => {
    for (const bad of ['0', '65', '-1', '2.5', 'two', '1e1']) {
      expect(() => redisConfig({ FIREHOSE_SHARDS: bad })).toThrow(ConfigError)
      expect(() => redisConfig({ FIREHOSE_SHARDS: bad })).toThrow(
        /^FIREHOSE_SHARDS must be an integer from 1 to 64/,
      )
    }
  })
})
