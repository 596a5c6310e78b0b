// pnpm demo: a local PDS with simulated accounts, the whole pipeline and the API; no internet needed.
import { prepare, runMain } from './bootstrap.mjs'

prepare()
await runMain('demo.js')
