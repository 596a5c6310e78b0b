import { runService } from '@circles/config'
import { createLogger } from '@circles/logging'
import { readEnv, toConfig } from './config.js'
import { createFirehoseService } from './service.js'

await runService(createLogger('firehose:main'), () => createFirehoseService(toConfig(readEnv())))
