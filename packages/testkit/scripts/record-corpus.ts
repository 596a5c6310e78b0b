/**
 * Records a local PDS's firehose to a corpus file while a simulator drives accounts through every
 * interaction kind. Writes `<out>` (raw frames, see src/corpus.ts; gzip when it ends in `.gz`) and
 * `<out without .bin[.gz]>.expected.json` (the interactions the frames must yield).
 *
 *   pnpm exec tsc --build && node packages/testkit/dist/scripts/record-corpus.js \
 *     --out packages/testkit/corpus/small.bin.gz --rounds 40 --accounts 8
 */
import { writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { gzipSync } from 'node:zlib'
import WebSocket from 'ws'
import { type CorpusFrame, encodeCorpus, frameSeq } from '../src/corpus.js'
import { startLocalPds } from '../src/local-pds.js'
import { SUBSCRIBE_REPOS_PATH } from '../src/replay-server.js'
import { ActivitySimulator } from '../src/simulator.js'

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'packages/testkit/corpus/small.bin.gz' },
    rounds: { type: 'string', default: '40' },
    accounts: { type: 'string', default: '8' },
  },
})
const out = values.out as string
const rounds = Number(values.rounds)
const accounts = Number(values.accounts)

const pds = await startLocalPds()
const frames: CorpusFrame[] = []
let lastFrameAt = Date.now()
const ws = new WebSocket(`${pds.firehoseUrl}${SUBSCRIBE_REPOS_PATH}`)
ws.on('message', (data: Buffer) => {
  const bytes = new Uint8Array(data)
  frames.push({ seq: frameSeq(bytes), data: bytes })
  lastFrameAt = Date.now()
})
await new Promise<void>((resolve, reject) => {
  ws.once('open', () => resolve())
  ws.once('error', reject)
})

try {
  const sim = await ActivitySimulator.create(pds, accounts)
  const started = Date.now()
  for (let r = 0; r < rounds; r++) {
    await sim.round()
    if (r === Math.floor(rounds / 2))
      await sim.changeHandle(0, `renamed${Date.now() % 100000}.test`)
    process.stderr.write(
      `round ${r + 1}/${rounds}: ${sim.commits} writes, ${frames.length} frames\n`,
    )
  }
  // The PDS sequences asynchronously: wait until the firehose has been quiet for a second.
  while (Date.now() - lastFrameAt < 1000) await new Promise((r) => setTimeout(r, 200))
  const file = encodeCorpus(frames)
  await writeFile(out, out.endsWith('.gz') ? gzipSync(file, { level: 9 }) : file)
  const expectedPath = out.replace(/\.bin(\.gz)?$/, '') + '.expected.json'
  await writeFile(expectedPath, `${JSON.stringify(sim.expected, null, 1)}\n`)
  const secs = (Date.now() - started) / 1000
  process.stderr.write(
    `wrote ${frames.length} frames (${file.length} bytes raw) to ${out} and ${sim.expected.length} expected events to ${expectedPath} in ${secs.toFixed(1)} s\n`,
  )
} finally {
  ws.close()
  await pds.close()
}
