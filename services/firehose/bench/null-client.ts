import WebSocket from 'ws'

// The ceiling of `pnpm bench:firehose`: a client that only counts frames, to show how fast the
// loopback replay server can send on this machine. Exits once FRAMES frames arrived.
//   RELAY_URL=ws://... FRAMES=N node null-client.js

const want = Number(process.env.FRAMES)
let n = 0
const ws = new WebSocket(`${process.env.RELAY_URL}/xrpc/com.atproto.sync.subscribeRepos`)
ws.on('message', () => {
  if (++n === want) ws.close()
})
ws.on('close', () => {
  process.exitCode = n === want ? 0 : 1
})
