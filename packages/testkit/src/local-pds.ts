import { once } from 'node:events'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AtpAgent } from '@atproto/api'
import { Secp256k1Keypair } from '@atproto/crypto'
import * as pds from '@atproto/pds'
import { freePort } from '@circles/redis-server'
import * as plc from '@did-plc/server'

const HOST = '127.0.0.1'
const ADMIN_PASSWORD = 'admin-pass'
const PASSWORD = 'password'

export interface PdsAccount {
  did: string
  handle: string
  /** Logged in as this account. */
  agent: AtpAgent
}

export interface LocalPds {
  /** `http://127.0.0.1:<port>` */
  url: string
  /** `ws://127.0.0.1:<port>`: the relay URL a firehose client takes (it adds the XRPC path). */
  firehoseUrl: string
  port: number
  plcUrl: string
  /** Creates an account with a unique handle `<name><n>.test` and email, logged in. */
  createAccount(name?: string): Promise<PdsAccount>
  /** An agent that is not logged in. */
  agent(): AtpAgent
  /** The seq of the last event the PDS sequenced (0 when none yet). */
  lastSeq(): Promise<number>
  /**
   * Deletes the account the way its owner would (requestAccountDelete, the emailed token, deleteAccount):
   * the firehose gets an `#account` event with status `deleted`.
   */
  deleteAccount(account: PdsAccount): Promise<void>
  /** Stops the PDS and the PLC server and deletes their data directories. Idempotent. */
  close(): Promise<void>
}

/**
 * A real `@atproto/pds` (0.4.x, the line that runs on Node 20) with an in-memory PLC server, both
 * bound to 127.0.0.1 (their own `start()` listens on every interface). Data lives in a temporary
 * directory that `close()` removes.
 */
export async function startLocalPds(): Promise<LocalPds> {
  const dir = await mkdtemp(join(tmpdir(), 'circles-pds-'))
  const cleanups: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })]
  const close = async () => {
    // Reverse order; each step runs even if an earlier one failed.
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined)
  }
  try {
    const plcServer = plc.PlcServer.create({ db: plc.Database.mock(), port: 0 })
    const plcHttp = await listenLocal(plcServer.app)
    cleanups.push(() => closeServer(plcHttp))
    const plcUrl = `http://${HOST}:${(plcHttp.address() as AddressInfo).port}`

    const port = await freePort()
    const rotationKey = await Secp256k1Keypair.create({ exportable: true })
    const env: pds.ServerEnvironment = {
      devMode: true,
      port,
      hostname: 'localhost',
      dataDirectory: join(dir, 'data'),
      blobstoreDiskLocation: join(dir, 'blobs'),
      didPlcUrl: plcUrl,
      recoveryDidKey: (await Secp256k1Keypair.create()).did(),
      adminPassword: ADMIN_PASSWORD,
      jwtSecret: 'jwt-secret',
      serviceHandleDomains: ['.test'],
      plcRotationKeyK256PrivateKeyHex: Buffer.from(await rotationKey.export()).toString('hex'),
      inviteRequired: false,
      disableSsrfProtection: true,
      bskyAppViewUrl: 'https://appview.invalid',
      bskyAppViewDid: 'did:example:invalid',
      modServiceUrl: 'https://moderator.invalid',
      modServiceDid: 'did:example:invalid',
    }
    await mkdir(join(dir, 'data'), { recursive: true })
    const server = await pds.PDS.create(pds.envToCfg(env), pds.envToSecrets(env))
    cleanups.push(() => server.destroy())
    // What PDS.start() does, but bound to loopback. `app.listen` is wrapped by xrpc-server to
    // attach the websocket upgrade handler, so the firehose works on this server too.
    await server.ctx.sequencer.start()
    const pdsHttp = await listenLocal(server.app, port)
    cleanups.push(() => closeServer(pdsHttp))
    const deleteTokens = readDeleteTokens(server.ctx.mailer)

    const url = `http://${HOST}:${port}`
    const emails = new Map<string, string>()
    let n = 0
    const tag = Math.random().toString(36).slice(2, 6)
    return {
      url,
      firehoseUrl: `ws://${HOST}:${port}`,
      port,
      plcUrl,
      agent: () => new AtpAgent({ service: url }),
      lastSeq: async () => (await server.ctx.sequencer.curr()) ?? 0,
      async createAccount(name = 'user') {
        const handle = `${name}${tag}${n++}.test`
        const agent = new AtpAgent({ service: url })
        const email = `${handle}@example.com`
        await agent.createAccount({ handle, email, password: PASSWORD })
        const did = agent.session?.did
        if (!did) throw new Error(`account ${handle} has no session`)
        emails.set(did, email)
        return { did, handle, agent }
      },
      async deleteAccount({ did, agent }) {
        await agent.com.atproto.server.requestAccountDelete()
        const token = deleteTokens.get(emails.get(did) ?? '')
        if (token === undefined) throw new Error(`no account deletion mail was sent for ${did}`)
        await agent.com.atproto.server.deleteAccount({ did, password: PASSWORD, token })
      },
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}

/** The PDS mails the deletion token (here to nobody: no SMTP): the tokens by address, read as the owner would. */
function readDeleteTokens(mailer: pds.AppContext['mailer']): Map<string, string> {
  const tokens = new Map<string, string>()
  const send = mailer.sendAccountDelete.bind(mailer)
  mailer.sendAccountDelete = async (params, opts) => {
    tokens.set(String(opts.to), params.token)
    return send(params, opts)
  }
  return tokens
}

async function listenLocal(
  app: { listen: (port: number, host: string) => Server },
  port = 0,
): Promise<Server> {
  const server = app.listen(port, HOST)
  await once(server, 'listening')
  return server
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}
