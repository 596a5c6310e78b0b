// What a mention asks for. Pure: the post's text in, a command out. The words are English on purpose (the
// help reply says which); anything the parser does not know, in any language, gets the help reply rather
// than a guess.

export type Command =
  | {
      kind: 'circle'
      /** `48h` (the API's default) or a day window the API accepts. */
      window: '48h' | '7d' | '30d' | '90d'
      direction: 'both' | 'received'
      nolikes: boolean
    }
  | { kind: 'help' }

const WINDOWS = new Set(['7d', '30d', '90d', '48h'])

/**
 * Reads the command in `text`, ignoring the mention itself (`@handle` words) and case. `circle` may be
 * followed, in any order, by a window (`7d`, `30d`, `90d`, `48h`), `no likes` / `nolikes`, `received`.
 * Any other word makes it a help request.
 */
export function parseCommand(text: string): Command {
  const words = text
    .toLowerCase()
    .slice(0, 3000)
    .split(/\s+/)
    .map((w) => w.replace(/[.!?,;:]+$/, ''))
    .filter((w) => w !== '' && !w.startsWith('@'))
  if (words[0] !== 'circle') return { kind: 'help' }
  const cmd = { kind: 'circle' as const, window: '48h' as const, direction: 'both', nolikes: false }
  let window: string = cmd.window
  let direction: 'both' | 'received' = 'both'
  let nolikes = false
  for (let i = 1; i < words.length; i++) {
    const w = words[i] as string
    if (WINDOWS.has(w)) window = w
    else if (w === 'received') direction = 'received'
    else if (w === 'nolikes') nolikes = true
    else if (w === 'no' && (words[i + 1] === 'likes' || words[i + 1] === 'like')) {
      nolikes = true
      i++
    } else return { kind: 'help' }
  }
  return { ...cmd, window: window as '48h', direction, nolikes }
}

export const HELP_TEXT =
  'I draw your circle: the accounts you interact with most. Mention me with "circle", ' +
  'optionally "7d", "30d" or "90d", "no likes", or "received".'

export const OPTED_OUT_TEXT = 'You have opted out of circles, so I have nothing to draw for you.'

export const NO_CIRCLE_TEXT =
  'I have no interactions of yours in that window yet, so there is no circle to draw.'
