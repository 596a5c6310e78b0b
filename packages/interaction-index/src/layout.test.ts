import { COLUMN_KINDS, COLUMN_RECORDS } from '@circles/core'
import { describe, expect, it } from 'vitest'
import { KIND_CODES, RECORD_TYPE_CODES } from './layout.js'

describe('layout codes', () => {
  it('are the codes of decoded stream columns (the writer copies them into records as they are)', () => {
    expect(COLUMN_KINDS.map((k) => KIND_CODES[k])).toEqual([0, 1, 2, 3])
    expect(COLUMN_RECORDS.map((r) => RECORD_TYPE_CODES[r])).toEqual([0, 1, 2])
  })
})
