import { runService } from '@circles/config'
import { createLogger } from '@circles/logging'
import { readEnv, toConfig } from './config.js'
import { createIndexerService } from './service.js'

await runService(createLogger('indexer:main'), () => createIndexerService(toConfig(readEnv())))
