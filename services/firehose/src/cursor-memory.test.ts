import { describe, expect, it } from 'vitest'
import { CursorMemory } from './cursor-memory.js'

const HOUR = 3_600_000

describe('CursorMemory', () => {
  it('falls back to the applied cursor without a refill window, and to nothing it never had', () => {
    const m = new CursorMemory(null, 'ws://relay')
    expect(m.fallback).toBeNull()
    m.note(100)
    expect(m.fallback).toBe(100)
    m.noteApplied(80)
    expect(m.fallback).toBe(80)
  })

  it('with a refill window, goes back to the newest mark at least that old, else to where it began', () => {
    let now = Date.now()
    const m = new CursorMemory(null, 'ws://relay', 49 * HOUR, () => now)
    m.noteStart(1000)
    for (let h = 1; h <= 60; h++) {
      now += HOUR
      m.note(1000 + h * 100)
      m.noteApplied(1000 + h * 100 - 10)
    }
    // 60 h after the start: the mark from 49 h ago (hour 11), not the start, not the newest
    expect(m.fallback).toBe(1000 + 11 * 100 - 10)
    const young = new CursorMemory(null, 'ws://relay', 49 * HOUR, () => now)
    young.noteStart(7)
    young.note(50)
    young.noteApplied(40)
    expect(young.fallback).toBe(7)
  })
})
