// pnpm run backfill [--resync] [--partners N] <handle|did>...: backfills accounts from their repos, here.
import { prepare, runMain } from './bootstrap.mjs'

prepare(['packages/ops'])
await runMain('backfill-cli.js')
