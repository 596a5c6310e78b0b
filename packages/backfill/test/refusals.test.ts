import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createIndexWriter, type IndexWriter } from '@circles/interaction-index'
import { createTestRedis, makeTestRepo, type TestRedis, type TestRepo } from '@circles/testkit'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { backfillRepo, failureReason, type RepoDeps } from '../src/repo.js'
import { repoOpener, type SourceConfig } from '../src/source.js'
import { like } from './records.js'

// A repo that does not check, or a PDS or DID document that cannot be trusted, is refused with a clear
// reason and nothing of it is written: the only keys the attempt leaves are its own failure state and
// the failure counter. One local server plays the PLC directory and the PDS, per case.

const DID = 'did:plc:refusedaaaaaaaaaaaaaaaaa'
const PARTNER = 'did:plc:partneraaaaaaaaaaaaaaaaa'

type Case = { doc?: (pds: string) => unknown; repo?: (res: ServerResponse) => void }
let current: Case = {}
let base = ''
let good: TestRepo
let other: TestRepo
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  if (req.url === `/${DID}`) {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(current.doc ? current.doc(base) : docFor(good, base)))
  } else if (req.url?.startsWith('/xrpc/com.atproto.sync.getRepo')) {
    if (current.repo) current.repo(res)
    else sendCar(res, good.car)
  } else {
    res.statusCode = 404
    res.end()
  }
})

function docFor(repo: TestRepo, pds: string) {
  return {
    id: DID,
    alsoKnownAs: ['at://refused.test'],
    verificationMethod: [
      {
        id: `${DID}#atproto`,
        type: 'Multikey',
        controller: DID,
        publicKeyMultibase: repo.signingKey.replace('did:key:', ''),
      },
    ],
    service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: pds }],
  }
}

function sendCar(res: ServerResponse, car: Uint8Array) {
  res.setHeader('content-type', 'application/vnd.ipld.car')
  res.end(Buffer.from(car))
}

let tr: TestRedis
let writer: IndexWriter
beforeAll(async () => {
  const records = [
    like(PARTNER, Date.now() - 3_600_000),
    like(PARTNER, Date.now() - 5 * 86_400_000),
  ]
  const asTest = records.map((r) => ({ ...r, record: r.record as Record<string, unknown> }))
  good = await makeTestRepo(asTest, DID)
  other = await makeTestRepo(asTest, DID) // the same records, signed with another key
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => {
  server.closeAllConnections()
  server.close()
})
beforeEach(async () => {
  tr = await createTestRedis('backfill-refusals')
  writer = createIndexWriter(tr.redis, tr.schema)
  current = {}
})
afterEach(async () => {
  await writer.close()
  await tr.cleanup()
})

function deps(cfg: SourceConfig = {}): RepoDeps {
  const source = { plcUrl: base, allowPrivate: true, timeoutMs: 300, ...cfg }
  return { redis: tr.redis, schema: tr.schema, writer, open: repoOpener(source) }
}

/** Runs a backfill that must be refused; returns its reason and the keys it left. */
async function refused(c: Case, cfg: SourceConfig = {}) {
  current = c
  const reason = await backfillRepo(deps(cfg), DID).then(
    () => 'accepted',
    (err) => failureReason(err),
  )
  const keys = (await tr.redis.keys(tr.schema.all)).map((k) => k.slice(tr.schema.prefix.length))
  return { reason, keys: keys.sort() }
}

const LEFT = [`backfill:stats`, `backfill:{${DID}}:repo`]

describe('a backfill refuses, with a reason, and writes nothing', () => {
  it('folds the good repo (the cases below differ from it in one thing)', async () => {
    const out = await backfillRepo(deps(), DID)
    expect(out.fold?.liveEvents).toBe(1)
    expect(out.fold?.dayEvents).toBe(1)
    // and not fetched again: the live stream keeps a folded repo current
    let fetched = 0
    current = {
      repo: (res) => {
        fetched++
        sendCar(res, good.car)
      },
    }
    expect((await backfillRepo(deps(), DID)).status).toBe('skipped')
    expect(fetched).toBe(0)
  })

  it('a repo signed with a key its DID document does not name', async () => {
    expect(await refused({ repo: (res) => sendCar(res, other.car) })).toEqual({
      reason: 'bad_signature',
      keys: LEFT,
    })
    expect(await tr.redis.hgetall(tr.schema.backfillRepo(DID))).toEqual(
      expect.objectContaining({ state: 'failed', reason: 'bad_signature' }),
    )
    expect(await tr.redis.hget(tr.schema.backfillStats, 'failed:bad_signature')).toBe('1')
  })

  it('a truncated CAR', async () => {
    const cut = good.car.subarray(0, Math.floor(good.car.length * 0.8))
    const { reason, keys } = await refused({ repo: (res) => sendCar(res, cut) })
    expect(['bad_car', 'missing_block']).toContain(reason)
    expect(keys).toEqual(LEFT)
  })

  it('a PDS that never answers', async () => {
    expect(await refused({ repo: () => {} })).toEqual({ reason: 'timeout', keys: LEFT })
  })

  it('a DID document pointing at 127.0.0.1, unless private addresses are allowed', async () => {
    expect(await refused({}, { allowPrivate: false })).toEqual({
      reason: 'private_address',
      keys: LEFT,
    })
  })

  it('a DID document naming a PDS that is not an http(s) URL', async () => {
    const doc = () => docFor(good, 'ftp://127.0.0.1/')
    expect(await refused({ doc })).toEqual({ reason: 'bad_scheme', keys: LEFT })
  })
})
