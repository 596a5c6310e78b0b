import { runService } from '@circles/config'
import { createLogger } from '@circles/logging'
import { readEnv, toConfig } from './config.js'
import { createFartService } from './service.js'

await runService(createLogger('fart:main'), () => createFartService(toConfig(readEnv())))
