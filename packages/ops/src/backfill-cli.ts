import { resolve } from 'node:path'
import {
  BACKFILL_ENV,
  backfillAccount,
  backfillConfig,
  failureReason,
  type RepoOutcome,
  repoOpener,
} from '@circles/backfill'
import { createBskyClient } from '@circles/bsky-client'
import { envUrl, pickEnv, REDIS_ENV, redisConfig } from '@circles/config'
import { isValidDid, isValidHandle } from '@circles/core'
import { createIndexWriter } from '@circles/interaction-index'
import { createSchema } from '@circles/redis-schema'
import { connectRedis } from '@circles/redis-wire'
import { mergeEnv, readEnvFile } from './env-file.js'
import { repoRoot } from './paths.js'

// `pnpm run backfill [--resync] <handle|did>...`: backfills accounts from this terminal, in this process
// (the same code as the scheduler's worker, with the same .env; `--resync` asks a repo backfilled before
// for what changed since), with a progress bar on stderr. Exit 1 when
// any account's own repo failed.

const USAGE = 'usage: pnpm run backfill [--resync] [--partners N] <handle|did>...'

interface Args {
  actors: string[]
  partners?: number
  resync?: boolean
}

export function parseArgs(argv: string[]): Args | string {
  const out: Args = { actors: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === '--resync') out.resync = true
    else if (a === '--partners') {
      const n = Number(argv[++i])
      if (!Number.isInteger(n) || n < 0 || n > 1000)
        return '--partners takes a number from 0 to 1000'
      out.partners = n
    } else if (a.startsWith('-')) return `unknown option ${a}`
    else {
      const bare = a.replace(/^@/, '')
      if (!isValidDid(bare) && !isValidHandle(bare))
        return `not a handle or DID: ${JSON.stringify(a)}`
      out.actors.push(bare)
    }
  }
  return out.actors.length > 0 ? out : 'name at least one account'
}

/** One line of progress: a bar on a terminal (rewritten in place), else a plain line per repo. */
function progressLine(
  actor: string,
  done: number,
  total: number,
  last: RepoOutcome | Error,
): string {
  const width = 24
  const filled = Math.round((done / total) * width)
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`
  const what =
    last instanceof Error
      ? `failed (${failureReason(last)})`
      : `${last.did} ${last.status === 'skipped' ? 'already backfilled' : `${last.fold?.records ?? 0} records`}`
  return `${actor} ${bar} ${done}/${total} repos  ${what}`
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const args = parseArgs(argv)
  if (typeof args === 'string') {
    process.stderr.write(`${args}\n${USAGE}\n`)
    return 2
  }
  const env = pickEnv(mergeEnv(readEnvFile(resolve(repoRoot(), '.env'))), [
    ...REDIS_ENV,
    ...BACKFILL_ENV,
    'APPVIEW_URL',
  ])
  const target = redisConfig(env)
  const config = backfillConfig(env)
  const appviewUrl = envUrl(env, 'APPVIEW_URL', 'https://public.api.bsky.app', ['https:', 'http:'])
  const schema = createSchema(target.redisPrefix)
  const redis = connectRedis(target, { maxRetriesPerRequest: 3 })
  const writer = createIndexWriter(redis, schema, { rollupGraceHours: config.rollupGraceHours })
  const deps = { redis, schema, writer, open: repoOpener(config.source) }
  const tty = process.stderr.isTTY === true
  let failed = 0
  try {
    for (const actor of args.actors) {
      const did = isValidDid(actor)
        ? actor
        : await createBskyClient({ appviewUrl }).resolveHandle(actor)
      if (did === null) {
        process.stderr.write(`${actor}: no such handle\n`)
        failed++
        continue
      }
      try {
        const out = await backfillAccount(deps, did, {
          partners: args.partners ?? config.partners,
          resync: args.resync,
          concurrency: config.partnerConcurrency,
          onProgress: (done, total, last) => {
            const line = progressLine(actor, done, total, last)
            process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`)
          },
        })
        if (tty) process.stderr.write('\n')
        const p = out.partners
        console.log(
          `${actor}: done (own repo ${out.own.status}; partners: ${p.folded} folded, ${p.skipped} already, ${p.failed} failed)`,
        )
      } catch (err) {
        if (tty) process.stderr.write('\n')
        console.log(`${actor}: FAILED (${failureReason(err)}): ${(err as Error).message}`)
        failed++
      }
    }
  } finally {
    await writer.close()
    redis.disconnect()
  }
  return failed > 0 ? 1 : 0
}
