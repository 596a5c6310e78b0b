import type { Cluster, Redis } from 'ioredis'
import { isCluster } from './client.js'
import { Frame } from './frame.js'
import { keySlotOf } from './slot.js'
import { Wire, WireError, type WireOptions } from './wire.js'

// The writer's frames on a Redis Cluster. A frame is cut by the slot of each command's key into one frame
// per primary, sent on a Wire of its own per primary (all at once), and the replies put back in the
// frame's order: the callers stay as they are, and on one Redis nothing of this runs (`wireFor`). Within
// one primary the commands keep their order (one connection, one frame), which is the order that counts:
// an account's keys share one slot. The slot map comes from CLUSTER SLOTS; a MOVED reply moves its slot
// and the map is read again before the next frame; an ASK reply (a slot being migrated) is sent once more
// to the node it names, behind ASKING. A lost node (a primary killed) fails the frame as a WireError, as
// a lost connection does on one Redis: the caller applies the batch again, after the map is read again.

/** What sends a frame and returns its replies in order: a `Wire` (one Redis) or a `ClusterWire`. */
export interface FrameSender {
  /** True when commands are spread over several nodes: no order between commands of different slots. */
  readonly routed: boolean
  send(frame: Frame): Promise<unknown[]>
  close(): Promise<void>
}

/** The frame sender for `redis`'s server(s): a `Wire` with its options, or a `ClusterWire` for a cluster. */
export function wireFor(
  redis: Redis | Cluster,
  onLost?: () => void,
  options: Partial<WireOptions> = {},
): FrameSender {
  if (!isCluster(redis)) return new Wire({ ...redis.options, ...options }, onLost)
  return new ClusterWire(redis, { ...redis.options.redisOptions, ...options }, onLost)
}

/** Redirections followed for one command before the frame fails (as a lost connection does). */
const MAX_REDIRECTIONS = 5
/** A command without a key (PING): any primary. */
const ANY = -1
/** FUNCTION (LOAD, FLUSH...) and SCRIPT (LOAD...): every primary, as a library or script must be on each. */
const ALL = -2

interface Command {
  start: number
  end: number
  /** The slot of its key, or ANY or ALL. */
  slot: number
}

export class ClusterWire implements FrameSender {
  readonly routed = true
  /** Primary address (`host:port`) per slot. */
  private slots: (string | undefined)[] = []
  private stale = true
  private loading: Promise<void> | null = null
  private readonly wires = new Map<string, Wire>()
  private closing: Promise<void> | null = null

  constructor(
    private readonly cluster: Cluster,
    private readonly options: WireOptions,
    private readonly onLost: () => void = () => {},
  ) {}

  async send(frame: Frame): Promise<unknown[]> {
    if (this.closing) throw new WireError('connection closed')
    if (frame.commands === 0) return []
    if (this.stale) await this.loadSlots()
    const commands = commandsOf(frame)
    const groups = new Map<string, number[]>()
    commands.forEach((c, i) => {
      for (const address of this.targets(c.slot)) {
        const list = groups.get(address)
        if (list) list.push(i)
        else groups.set(address, [i])
      }
    })
    const replies: unknown[] = new Array(commands.length)
    const answered = new Uint8Array(commands.length)
    await Promise.all(
      [...groups].map(async ([address, list]) => {
        const got = await this.wireTo(address).send(subFrame(frame, commands, list))
        list.forEach((i, k) => {
          // a command sent to every primary answers with an error if any primary refused it
          if (answered[i] === 0 || got[k] instanceof Error) replies[i] = got[k]
          answered[i] = 1
        })
      }),
    )
    await this.followRedirections(frame, commands, replies)
    return replies
  }

  close(): Promise<void> {
    this.closing ??= Promise.all([...this.wires.values()].map((w) => w.close())).then(() => {})
    return this.closing
  }

  private targets(slot: number): string[] {
    if (slot === ALL) return [...new Set(this.slots.filter((a) => a !== undefined))]
    const address = slot === ANY ? this.slots.find((a) => a !== undefined) : this.slots[slot]
    if (address === undefined) {
      this.stale = true
      throw new WireError(`no primary serves slot ${slot} (the cluster is changing)`)
    }
    return [address]
  }

  /** MOVED and ASK replies: each such command again at the node named, in frame order per node. */
  private async followRedirections(frame: Frame, commands: Command[], replies: unknown[]) {
    for (let hop = 0; ; hop++) {
      const moves = new Map<string, { i: number; ask: boolean }[]>()
      replies.forEach((r, i) => {
        const m = r instanceof Error ? /^(MOVED|ASK) (\d+) (\S+)/.exec(r.message) : null
        if (!m) return
        const ask = m[1] === 'ASK'
        const address = m[3] as string
        if (!ask) {
          this.slots[Number(m[2])] = address
          this.stale = true
        }
        const list = moves.get(address)
        if (list) list.push({ i, ask })
        else moves.set(address, [{ i, ask }])
      })
      if (moves.size === 0) break
      if (hop === MAX_REDIRECTIONS) throw new WireError('too many cluster redirections')
      await Promise.all(
        [...moves].map(async ([address, list]) => {
          const sub = new Frame(256)
          for (const { i, ask } of list) {
            if (ask) sub.call('ASKING')
            copyCommand(sub, frame, commands[i] as Command)
          }
          const got = await this.wireTo(address).send(sub)
          let k = 0
          for (const { i, ask } of list) {
            if (ask) k++
            replies[i] = got[k++]
          }
        }),
      )
    }
    for (const r of replies) {
      if (r instanceof Error && /^(TRYAGAIN|CLUSTERDOWN) /.test(r.message)) {
        this.stale = true
        throw new WireError(`the cluster is changing: ${r.message}`)
      }
    }
  }

  private loadSlots(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const ranges = (await this.cluster.call('CLUSTER', 'SLOTS')) as [
          number,
          number,
          ...[string, number][],
        ][]
        const slots: (string | undefined)[] = new Array(16384)
        for (const [from, to, primary] of ranges) {
          if (!primary) continue
          const address = `${primary[0] || this.options.host || '127.0.0.1'}:${primary[1]}`
          for (let s = from; s <= to; s++) slots[s] = address
        }
        this.slots = slots
        this.stale = false
      } catch (err) {
        throw new WireError(`cannot read the cluster's slots: ${(err as Error).message}`, {
          cause: err,
        })
      } finally {
        this.loading = null
      }
    })()
    return this.loading
  }

  private wireTo(address: string): Wire {
    let wire = this.wires.get(address)
    if (!wire) {
      const at = address.lastIndexOf(':')
      wire = new Wire(
        { ...this.options, host: address.slice(0, at), port: Number(address.slice(at + 1)) },
        () => {
          // a node gone (killed, failed over): read the map again before the next frame
          this.stale = true
          this.onLost()
        },
      )
      this.wires.set(address, wire)
    }
    return wire
  }
}

/** A new frame with the commands `list` of `frame`, in that order. */
function subFrame(frame: Frame, commands: Command[], list: number[]): Frame {
  let size = 0
  for (const i of list) size += (commands[i] as Command).end - (commands[i] as Command).start
  const sub = new Frame(size)
  for (const i of list) copyCommand(sub, frame, commands[i] as Command)
  return sub
}

function copyCommand(to: Frame, from: Frame, c: Command): void {
  to.raw(from.buf.subarray(c.start, c.end))
  to.commands++
}

/** Reads a decimal number at `at` up to its CRLF: [value, offset after the CRLF]. */
function readNumber(buf: Buffer, at: number): [number, number] {
  let n = 0
  while (buf[at] !== 0x0d) n = n * 10 + ((buf[at++] as number) - 48)
  return [n, at + 2]
}

/** The commands of a frame (RESP arrays of bulk strings, as `Frame` writes them) and their key's slot. */
export function commandsOf(frame: Frame): Command[] {
  const buf = frame.buf
  const out: Command[] = []
  let at = 0
  while (at < frame.at) {
    const start = at
    const [argc, first] = readNumber(buf, at + 1)
    at = first
    let name = ''
    let keyArg = 1
    let slot = ANY
    for (let i = 0; i < argc; i++) {
      const [len, from] = readNumber(buf, at + 1)
      at = from + len + 2
      if (i === 0) {
        name = buf.toString('latin1', from, from + Math.min(len, 16)).toUpperCase()
        if (name === 'FUNCTION' || name === 'SCRIPT') {
          slot = ALL
          keyArg = -1
        } else if (name === 'PING' || name === 'ASKING') keyArg = -1
        // FCALL fn numkeys key...: no key, no slot
        else if (name === 'FCALL' || name === 'FCALL_RO' || name === 'EVALSHA' || name === 'EVAL')
          keyArg = 3
      } else if (i === 2 && keyArg === 3 && buf.toString('latin1', from, from + len) === '0') {
        keyArg = -1
      } else if (i === keyArg) {
        slot = keySlotOf(buf, from, from + len)
      }
    }
    out.push({ start, end: at, slot })
  }
  return out
}
