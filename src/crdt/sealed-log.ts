/**
 * The sealed log: an outer `Y.Doc` holding one `Y.Array<Uint8Array>` of envelopes. It is the only
 * thing storage adapters, transports and the relay ever see. Plain Yjs; no crypto, no I/O.
 *
 * @module
 */
import * as Y from 'yjs'

/** Name of the envelope array inside the outer doc. */
export const SEALED_LOG_KEY = 'log'

/** A fresh outer doc. GC stays on so deleted (compacted) envelopes lose their bytes. */
export function createSealedLogDoc(): Y.Doc {
  return new Y.Doc({ gc: true })
}

/** The envelope array of an outer doc. */
export function sealedLog(doc: Y.Doc): Y.Array<Uint8Array> {
  return doc.getArray<Uint8Array>(SEALED_LOG_KEY)
}
