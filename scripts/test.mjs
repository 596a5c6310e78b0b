// pnpm test: install if needed, typecheck and build, then every test (vitest; arguments pass through).
import { prepare, runMain } from './bootstrap.mjs'

prepare()
await runMain('test-cli.js')
