export class LongTermCodecError extends Error {
  override name = 'LongTermCodecError'
}
