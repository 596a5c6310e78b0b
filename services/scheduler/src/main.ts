import { runService } from '@circles/config'
import { createLogger, logConnectionErrors } from '@circles/logging'
import { createSchema } from '@circles/redis-schema'
import { Redis } from 'ioredis'
import { readEnv, toConfig } from './config.js'
import { createLiveHours } from './live-index.js'
import { createSchedulerService } from './service.js'

await runService(createLogger('scheduler:main'), () => {
  const config = toConfig(readEnv())
  // The live index reader gets its own connection: roll-up scans and job commands do not queue behind
  // each other.
  const indexRedis = new Redis(config.redisUrl, { maxRetriesPerRequest: 3 })
  logConnectionErrors(indexRedis, createLogger('scheduler:index'), 'Redis connection (index reads)')
  const service = createSchedulerService(config, {
    live: createLiveHours(indexRedis, createSchema(config.redisPrefix)),
  })
  return {
    start: () => service.start(),
    close: async () => {
      try {
        await service.close()
      } finally {
        indexRedis.disconnect()
      }
    },
  }
})
