/**
 * Waits until `read()` has returned the same value for `quietMs`, and returns that value. For tests that
 * show something stopped ("no writes while Redis refuses them"): a fixed sleep before the first reading
 * flakes on a loaded machine, where the last in-flight step can land after any fixed delay.
 */
export async function settle<T>(
  what: string,
  read: () => T | Promise<T>,
  { quietMs = 300, timeoutMs = 15_000, pollMs = 20 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let value = await read()
  let since = Date.now()
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} to settle`)
    await new Promise((r) => setTimeout(r, pollMs))
    const next = await read()
    if (next !== value) {
      value = next
      since = Date.now()
    }
  }
  return value
}
