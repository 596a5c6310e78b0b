/**
 * Generates (or reuses) the large benchmark corpus: real signed commits from in-memory repos,
 * encoded as the frames a PDS sends. Takes minutes (about 200 commits/s per core): the file is
 * cached and reused while it holds at least `--commits` frames.
 *
 *   pnpm exec tsc --build && node packages/testkit/dist/scripts/build-large-corpus.js \
 *     --out packages/testkit/corpus/bench.large.bin --commits 100000
 */
import { parseArgs } from 'node:util'
import { ensureLargeCorpus } from '../src/synth-corpus.js'

export const DEFAULT_LARGE_CORPUS = 'packages/testkit/corpus/bench.large.bin'

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: DEFAULT_LARGE_CORPUS },
    commits: { type: 'string', default: '100000' },
    repos: { type: 'string', default: '300' },
    seed: { type: 'string', default: '1' },
  },
})
const frames = await ensureLargeCorpus(values.out as string, {
  commits: Number(values.commits),
  repos: Number(values.repos),
  seed: Number(values.seed),
  log: (line) => process.stderr.write(`${line}\n`),
})
process.stderr.write(`${frames.length} frames ready in ${values.out}\n`)
