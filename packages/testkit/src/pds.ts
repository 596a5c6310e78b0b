// The local PDS and what drives it: `@circles/testkit/pds`. Apart from the light entry because loading
// @atproto/pds takes seconds, which every test file importing the light helpers would otherwise pay.
export {
  createScriptAccounts,
  runLedgerScript,
  SCRIPT_ACCOUNTS,
  type ScriptAccount,
  type ScriptAccounts,
} from './ledger-script.js'
export { LedgerWriter, type PostOptions, type RecordRef } from './ledger-writer.js'
export { type LocalPds, type PdsAccount, startLocalPds } from './local-pds.js'
export { ActivitySimulator, type ExpectedEvent } from './simulator.js'
