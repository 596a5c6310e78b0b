import { describe, expect, it } from 'vitest'
import { deadLetterFields } from './dead-letter.js'

describe('deadLetterFields', () => {
  it("keeps the entry's fields and puts where and why last, so they win over same-named ones", () => {
    const b = (s: string) => Buffer.from(s)
    const fields = deadLetterFields(
      {
        id: b('17-3'),
        fields: [b('e'), b('garbage'), b('error'), b('theirs')],
        error: 'x'.repeat(2000),
      },
      'host-0',
      1234,
    )
    const flat = fields.map(String)
    expect(flat.slice(0, 4)).toEqual(['e', 'garbage', 'error', 'theirs'])
    const folded: Record<string, string> = {}
    for (let i = 0; i < flat.length; i += 2) folded[flat[i] as string] = flat[i + 1] as string
    expect(folded).toMatchObject({ id: '17-3', consumer: 'host-0', at: '1234', e: 'garbage' })
    expect(folded.error).toHaveLength(1000)
  })
})
