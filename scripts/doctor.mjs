// pnpm doctor [--skip-relay]: checks Redis, the relay, the stream, the indexer group and the scheduler.
import { prepare, runMain } from './bootstrap.mjs'

prepare(['packages/ops'])
await runMain('doctor-cli.js')
