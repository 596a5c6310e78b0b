// PM2 apps for the four services, and the bot when its credentials are set (built JavaScript: run `pnpm build` first).
//   pnpm exec pm2 start ecosystem.config.cjs     start (or reload) all four as daemons
//   pnpm exec pm2 ls | logs | reload all | stop all | delete all
// `pnpm start` runs these same apps in the foreground (packages/ops reads this file), so keep it the one list.
//
// Settings come from .env through Node's own --env-file (Node >= 20.6), added only when the file exists
// because Node 20 has no --env-file-if-exists; variables already in PM2's environment win over the file.

const { existsSync, readFileSync } = require('node:fs')
const { join, resolve } = require('node:path')
const { parseEnv } = require('node:util')

const envFile = join(__dirname, '.env')
const hasEnvFile = existsSync(envFile)
const nodeArgs = hasEnvFile ? [`--env-file=${envFile}`] : []
// Only this file's own settings (INDEXER_INSTANCES) are read here; util.parseEnv exists from Node 20.12.
const fileEnv = hasEnvFile && parseEnv ? parseEnv(readFileSync(envFile, 'utf8')) : {}
const indexerInstances = Number(process.env.INDEXER_INSTANCES ?? fileEnv.INDEXER_INSTANCES ?? 1)
// State kept outside Redis, under DATA_DIR (beside the AOF of the Redis `pnpm start` may run): the
// firehose's cursor checkpoint and the API's copy of the admin lists, to recover from a Redis that lost its data.
const dataDir = resolve(__dirname, process.env.DATA_DIR ?? fileEnv.DATA_DIR ?? 'data')
const checkpointFile =
  process.env.FIREHOSE_CHECKPOINT_FILE ??
  fileEnv.FIREHOSE_CHECKPOINT_FILE ??
  join(dataDir, 'firehose-checkpoint.json')
const listsFile =
  process.env.API_LISTS_FILE ?? fileEnv.API_LISTS_FILE ?? join(dataDir, 'api-lists.json')
// The bot (services/bot) runs only with its credentials: without them it would stop at start anyway.
const botCredentials = ['BOT_IDENTIFIER', 'BOT_APP_PASSWORD'].every(
  (n) => process.env[n] ?? fileEnv[n],
)
// PM2's log files, where `pnpm start` writes its own (LOG_DIR).
const logDir = resolve(__dirname, process.env.LOG_DIR ?? fileEnv.LOG_DIR ?? 'logs')

/** Settings every service shares. */
const common = {
  cwd: __dirname,
  exec_mode: 'fork',
  node_args: nodeArgs,
  autorestart: true,
  // Crash loops back off: 200 ms, then doubling up to 15 s; reset after a stable run.
  exp_backoff_restart_delay: 200,
  // PM2 sends SIGINT, waits this long, then SIGKILL. Each service drains and closes on SIGINT (the indexer
  // finishes its batch and acks; the firehose commits its last batch and cursor), which takes seconds.
  kill_timeout: 20_000,
  // One pair of log files per app (the indexer instances share theirs: each pino line carries its pid);
  // without merge_logs PM2 appends its process id to every file name.
  merge_logs: true,
  time: false,
  env: { NODE_ENV: 'production' },
}

const app = (name, extra = {}) => ({
  ...common,
  name,
  script: `services/${name}/dist/src/main.js`,
  out_file: join(logDir, `${name}.out.log`),
  error_file: join(logDir, `${name}.err.log`),
  ...extra,
})

module.exports = {
  apps: [
    // The order matters to `pnpm start`: it stops the first app (the producer) before the others.
    app('firehose', { env: { ...common.env, FIREHOSE_CHECKPOINT_FILE: checkpointFile } }),
    // Several consumers in one group share the stream. PM2 gives each instance NODE_APP_INSTANCE (0, 1, ...);
    // the indexer builds its unique consumer name from it.
    app('indexer', { instances: indexerInstances, instance_var: 'NODE_APP_INSTANCE' }),
    app('scheduler'),
    // The API's GC, for its tail latency (`pnpm bench:api` reads these flags; paired runs pinned to one core):
    // one GC thread, its own: with its core busy, V8's helper threads only compete with it (heavy uncached
    // p99 33-45 ms with it, 50-59 ms without); a 2 MB young generation: each scavenge copies what recent
    // requests left behind (the index's DID memo grows with every new partner), so smaller, more frequent
    // scavenges pause for ~2 ms rather than 6-9 (warm random-user p99 5.2-8.2 ms, against 8.4-12.7 ms).
    app('fart', {
      node_args: [...nodeArgs, '--single-threaded-gc', '--max-semi-space-size=2'],
      env: { ...common.env, API_LISTS_FILE: listsFile },
    }),
    // Exit code 78 is a refused login (wrong BOT_IDENTIFIER/BOT_APP_PASSWORD): not restarted, no retry storm.
    ...(botCredentials ? [app('bot', { stop_exit_codes: [78] })] : []),
  ],
}
