import { describe, expect, it } from 'vitest'
import { parseCommand } from './command.js'

const circle = (window = '48h', direction = 'both', nolikes = false) => ({
  kind: 'circle',
  window,
  direction,
  nolikes,
})

describe('parseCommand', () => {
  it.each([
    ['@circles.bot circle', circle()],
    ['Circle!', circle()],
    ['@circles.bot circle 30d', circle('30d')],
    ['circle 7d @someone.else', circle('7d')],
    ['@circles.bot circle no likes', circle('48h', 'both', true)],
    ['circle nolikes 90d', circle('90d', 'both', true)],
    ['circle received', circle('48h', 'received')],
    ['circle   received  30d  no likes.', circle('30d', 'received', true)],
  ])('%j -> a circle', (text, expected) => {
    expect(parseCommand(text)).toEqual(expected)
  })

  it.each([
    '',
    '@circles.bot',
    'hello there',
    'circle please',
    'circle 12d',
    'circle no',
    'show me my circle',
    '@circles.bot cercle',
    '@circles.bot 円を描いて',
    '@circles.bot kreis 30d',
    'circle\u0000',
    'x'.repeat(100_000),
  ])('%j -> help', (text) => {
    expect(parseCommand(text)).toEqual({ kind: 'help' })
  })
})
