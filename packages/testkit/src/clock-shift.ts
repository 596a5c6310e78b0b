// A vitest setup file: with TEST_CLOCK_SHIFT_DAYS=N every `Date` of the test process runs N days ahead of
// the real one (timers are untouched). `pnpm test:timeless` runs the pure tests so, to show that none of
// them depends on today's date. Tests that reach Redis cannot be run so: Redis keeps the real time.
const days = Number(process.env.TEST_CLOCK_SHIFT_DAYS ?? 0)
if (!Number.isFinite(days))
  throw new Error(`TEST_CLOCK_SHIFT_DAYS=${process.env.TEST_CLOCK_SHIFT_DAYS} is not a number`)
if (days !== 0) {
  const RealDate = Date
  const shift = days * 86_400_000
  class ShiftedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(RealDate.now() + shift)
      else super(...(args as [string]))
    }
    static override now(): number {
      return RealDate.now() + shift
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor
}
