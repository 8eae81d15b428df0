/**
 * Inner schema of the account registry: `statements: Y.Map<Uint8Array>` keyed by a statement id
 * (e.g. `cert/<deviceId>`). Values are signed statements; readers verify each one (src/crypto)
 * before trusting it. Plain Yjs; no crypto, no I/O.
 *
 * @module
 */
import type * as Y from 'yjs'

/** Name of the statement map inside the registry's inner doc. */
export const STATEMENTS_KEY = 'statements'

/** The statement map of the registry's inner doc. */
export function statementsMap(doc: Y.Doc): Y.Map<Uint8Array> {
  return doc.getMap<Uint8Array>(STATEMENTS_KEY)
}

/** Key of a device's certificate in the statement map. */
export function certificateKey(deviceId: string): string {
  return `cert/${deviceId}`
}
