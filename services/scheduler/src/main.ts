import { runService } from '@circles/config'
import { createLogger } from '@circles/logging'
import { readEnv, toConfig } from './config.js'
import { createSchedulerService } from './service.js'

await runService(createLogger('scheduler:main'), () => createSchedulerService(toConfig(readEnv())))
