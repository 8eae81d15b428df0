/**
 * When two ends of a loopback link have converged — what `settle()` waits for.
 *
 * @module
 */
import * as Y from 'yjs'
import { bytesEqual } from '../../util/bytes.js'
import { Attachment, type Endpoint, type Link } from './endpoints.js'

/**
 * Why a link has not converged, or `undefined` when it has: both ends must hold the same outer
 * state and the same forwarded presence, and each device end must have received a sync step 2.
 */
export function divergence(link: Link): string | undefined {
  const { a, b } = link
  if (!bytesEqual(outerState(a.doc), outerState(b.doc))) return 'outer state differs'
  if (!awarenessMatches(a, b, link)) return `${b.name} lacks presence from ${a.name}`
  if (!awarenessMatches(b, a, link)) return `${a.name} lacks presence from ${b.name}`
  for (const end of [a, b]) if (end instanceof Attachment && !link.gotStep2.has(end)) return `${end.name} awaits sync step 2`
  return undefined
}


/** Canonical bytes of a doc's state vector and delete set: equal iff both hold the same structs. */
function outerState(doc: Y.Doc): Uint8Array {
  return Y.encodeSnapshot(Y.snapshot(doc))
}

/** Whether `to` holds exactly the presence `from` announces over `link` (same clocks). */
function awarenessMatches(from: Endpoint, to: Endpoint, link: Link): boolean {
  for (const id of from.forwardedClients(link)) {
    const has = from.awareness.states.has(id)
    if (has !== to.awareness.states.has(id)) return false
    if (has && from.awareness.meta.get(id)?.clock !== to.awareness.meta.get(id)?.clock) return false
  }
  return true
}
