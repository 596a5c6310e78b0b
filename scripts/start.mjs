// pnpm start: install if needed, build, then run Redis (if none) and the four services in the foreground.
import { prepare, runMain } from './bootstrap.mjs'

prepare()
await runMain('start.js')
