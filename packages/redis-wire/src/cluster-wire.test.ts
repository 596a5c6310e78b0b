import { describe, expect, it } from 'vitest'
import { commandsOf } from './cluster-wire.js'
import { Frame } from './frame.js'
import { keySlot } from './slot.js'

describe('commandsOf', () => {
  it("cuts a frame into its commands, each with its key's slot", () => {
    const f = new Frame(64)
    f.call('HSET', 'circles:dids:7', 'a', 'b')
    f.call('FCALL', 'fn', 2, 'p:{did:plc:abc}:log', 'p:{did:plc:abc}:purged', 'x')
    f.call('FCALL', 'fn', 0, 'x')
    f.call('FUNCTION', 'LOAD', 'REPLACE', 'code')
    f.call('PING')
    f.call('GET', Buffer.from('p:{did:plc:abc}:log'))
    const cmds = commandsOf(f)
    expect(cmds.map((c) => c.slot)).toEqual([
      keySlot('circles:dids:7'),
      keySlot('did:plc:abc'),
      -1,
      -2,
      -1,
      keySlot('did:plc:abc'),
    ])
    // back to back, covering the frame
    expect(cmds[0]?.start).toBe(0)
    for (let i = 1; i < cmds.length; i++) expect(cmds[i]?.start).toBe(cmds[i - 1]?.end)
    expect(cmds.at(-1)?.end).toBe(f.at)
  })
})
