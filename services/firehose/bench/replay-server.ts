import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { syntheticCorpus } from '../test/frames.js'
import { served } from '../test/helpers.js'
import { startRelayServer } from '../test/relay-server.js'

// A loopback relay in its own process (so it does not share the service's event loop): serves a
// synthetic corpus as fast as the client reads. Prints its URL on the first line of stdout.
//   node services/firehose/dist/bench/replay-server.js [frames] [seed]

const n = Number(process.argv[2] ?? 100_000)
const seed = Number(process.argv[3] ?? 42)

/** Building frames is slow (hashing, encoding): keep the corpus in a temp file between runs. */
function corpus(): Uint8Array[] {
  const file = join(tmpdir(), `firehose-synthetic-${n}-${seed}.bin`)
  if (existsSync(file)) {
    const buf = readFileSync(file)
    const out: Uint8Array[] = []
    for (let p = 0; p < buf.length; ) {
      const len = buf.readUInt32LE(p)
      out.push(buf.subarray(p + 4, p + 4 + len))
      p += 4 + len
    }
    return out
  }
  const frames = syntheticCorpus(n, seed)
  const parts: Buffer[] = []
  for (const f of frames) {
    const len = Buffer.alloc(4)
    len.writeUInt32LE(f.length)
    parts.push(len, Buffer.from(f))
  }
  writeFileSync(file, Buffer.concat(parts))
  return frames
}

const frames = served(corpus())
const server = await startRelayServer(frames)
process.stdout.write(`${server.url} ${frames.at(-1)?.seq}\n`)
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0))
})
