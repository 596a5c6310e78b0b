import { runService } from '@circles/config'
import { createLogger } from '@circles/logging'
import { readEnv, toConfig } from './config.js'
import { createBotService } from './service.js'

await runService(createLogger('bot:main'), () => createBotService(toConfig(readEnv())))
