import { $, cleanActor, getJson } from './common.js'

// Suggestions while typing a handle: the service's accounts by handle or display name prefix (from its
// profile cache, so a keystroke never reaches the AppView), into the input's <datalist>. Asked 150 ms after
// the last keystroke; an answer for an older prefix than the latest asked is dropped. Picking a suggestion
// draws at once (`onPick`): the browser fills the input with it as one replacement, not as typing.

interface Suggested {
  did: string
  handle: string
  displayName?: string
}

/** What the route takes (anything else would be a 400): the start of a handle or name. */
const PREFIX = /^[\p{L}\p{M}\p{N} ._:-]{1,64}$/u

export function setUpSuggestions(
  input: HTMLInputElement,
  listId: string,
  onPick: () => void,
): void {
  const list = $<HTMLDataListElement>(listId)
  let timer: ReturnType<typeof setTimeout> | undefined
  let asked = 0
  const ask = async (q: string) => {
    const n = ++asked
    try {
      const { actors } = await getJson<{ actors: Suggested[] }>(
        `/v1/actors/suggest?${new URLSearchParams({ q, limit: '8' })}`,
      )
      if (n !== asked) return
      list.replaceChildren(
        ...actors.map((a) => {
          const o = document.createElement('option')
          o.value = a.handle
          if (a.displayName) o.label = `${a.displayName} (${a.handle})`
          return o
        }),
      )
    } catch {
      // No suggestions is the answer: typing a whole handle still works.
    }
  }
  input.addEventListener('input', (e) => {
    clearTimeout(timer)
    const q = cleanActor(input.value)
    const replaced = !(e instanceof InputEvent) || e.inputType === 'insertReplacementText'
    if (replaced && [...list.options].some((o) => o.value === q)) {
      asked++
      onPick()
      return
    }
    // A DID is pasted whole, and nobody's handle is in the list of its candidates.
    if (!PREFIX.test(q) || q.startsWith('did:')) {
      asked++
      list.replaceChildren()
      return
    }
    timer = setTimeout(() => void ask(q), 150)
  })
}
