import { parseEnv } from 'node:util'
import { describe, expect, it } from 'vitest'
import { mergeEnv, parseEnvFile } from './env-file.js'

const SAMPLE = [
  '# comment',
  'A=1 # trailing comment',
  'export B=two',
  'C="line\\nbreak"',
  "D='keep # this'",
  'E=',
  '  F = spaced  ',
  'G="multi',
  'line"',
  'not a line',
].join('\n')

describe('parseEnvFile', () => {
  it('reads KEY=VALUE lines like Node does', () => {
    const ours = parseEnvFile(SAMPLE)
    expect(ours).toEqual({
      A: '1',
      B: 'two',
      C: 'line\nbreak',
      D: 'keep # this',
      E: '',
      F: 'spaced',
      G: 'multi\nline',
    })
    // Same answer as Node's own parser (behind --env-file), where this Node has it.
    if (typeof parseEnv === 'function') expect(ours).toEqual(parseEnv(SAMPLE))
  })

  it('lets the real environment win over the file', () => {
    expect(mergeEnv({ A: 'file', B: 'file' }, { A: 'shell', C: undefined })).toEqual({
      A: 'shell',
      B: 'file',
    })
  })
})
