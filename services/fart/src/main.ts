import { runService } from '@circles/config'
import { createLogger } from '@circles/logging'
import { readEnv, toConfig } from './config.js'
import { createFartService } from './service.js'
import { createIndex, createLongWindows } from './wiring.js'

await runService(createLogger('fart:main'), () =>
  createFartService(toConfig(readEnv()), { createIndex, createLongWindows }),
)
