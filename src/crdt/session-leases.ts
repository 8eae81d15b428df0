/**
 * Leases and handoffs in the sessions schema (WIRE.md "Inner doc of a scope", `sessions`): each
 * device writes only its own key of a session's `claims` and of an offer's `responses`, so
 * concurrent writers never overwrite each other, and the lease holder is derived the same way on
 * every device (the claim with the highest `(term, deviceId)`). Readers validate every field.
 *
 * @module
 */
import * as Y from 'yjs'
import { readJson } from './json.js'
import type { Claim, RawOffer, SessionLease } from './session-types.js'

/** A nested map of a session, created when missing (older sessions). Call inside a transaction. */
export function childMap(session: Y.Map<unknown>, key: 'claims' | 'handoffs'): Y.Map<unknown> {
  const existing = session.get(key)
  if (existing instanceof Y.Map) return existing
  const created = new Y.Map<unknown>()
  session.set(key, created)
  return created
}

/** Every valid claim of a session, by device id. */
export function readClaims(session: Y.Map<unknown>): Map<string, Claim> {
  const out = new Map<string, Claim>()
  const claims = session.get('claims')
  if (!(claims instanceof Y.Map)) return out
  claims.forEach((value, deviceId) => {
    if (typeof value !== 'object' || value === null) return
    const { term, at, until, span, offer } = value as Record<string, unknown>
    if (typeof term !== 'number' || !Number.isSafeInteger(term) || term < 1) return
    if (!isTime(at) || !isTime(until)) return
    const claim: Claim = { term, at, until }
    if (typeof span === 'number' && Number.isSafeInteger(span) && span > 0) claim.span = span
    if (typeof offer === 'string') claim.offer = offer
    out.set(deviceId, claim)
  })
  return out
}

/** Total order of claims: higher term wins, then the higher device id (deterministic everywhere). */
export function claimBeats(a: [string, Claim], b: [string, Claim]): boolean {
  if (a[1].term !== b[1].term) return a[1].term > b[1].term
  return a[0] > b[0]
}

/** The winning claim as a lease. */
export function leaseOf(claims: Map<string, Claim>, now: number): SessionLease | undefined {
  let best: [string, Claim] | undefined
  for (const entry of claims) if (!best || claimBeats(entry, best)) best = entry
  if (!best) return undefined
  const [deviceId, claim] = best
  const lease: SessionLease = { deviceId, term: claim.term, acquiredAt: claim.at, expiresAt: claim.until, active: claim.until > now }
  if (claim.offer !== undefined) lease.offerId = claim.offer
  return lease
}

/** The highest term among the claims (0 without any). */
export function maxTerm(claims: Map<string, Claim>): number {
  let max = 0
  for (const claim of claims.values()) if (claim.term > max) max = claim.term
  return max
}

/** Every valid handoff offer of a session. */
export function readOffers(session: Y.Map<unknown>): RawOffer[] {
  const out: RawOffer[] = []
  const handoffs = session.get('handoffs')
  if (!(handoffs instanceof Y.Map)) return out
  handoffs.forEach((value, id) => {
    if (!(value instanceof Y.Map)) return
    const from = value.get('from')
    const to = value.get('to')
    const createdAt = value.get('createdAt')
    const expiresAt = value.get('expiresAt')
    if (typeof from !== 'string' || typeof to !== 'string' || !isTime(createdAt) || !isTime(expiresAt)) return
    const offer: RawOffer = { id, from, to, toKind: value.get('toKind') === true, createdAt, expiresAt, responses: new Map() }
    if (value.has('payload')) {
      const payload = readJson(value.get('payload'))
      if (payload !== undefined) offer.payload = payload
    }
    const link = value.get('link')
    if (typeof link === 'string') offer.link = link
    const cancelledAt = value.get('cancelledAt')
    if (isTime(cancelledAt)) offer.cancelledAt = cancelledAt
    const responses = value.get('responses')
    if (responses instanceof Y.Map) {
      responses.forEach((r, deviceId) => {
        if (typeof r !== 'object' || r === null) return
        const { action, at } = r as Record<string, unknown>
        if ((action === 'accept' || action === 'decline') && isTime(at)) offer.responses.set(deviceId, { action, at })
      })
    }
    out.push(offer)
  })
  return out
}

/** Write a handoff offer. Call inside a transaction. */
export function insertOffer(session: Y.Map<unknown>, offer: Omit<RawOffer, 'responses' | 'cancelledAt'>): void {
  const map = new Y.Map<unknown>()
  map.set('from', offer.from)
  map.set('to', offer.to)
  map.set('toKind', offer.toKind)
  if (offer.payload !== undefined) map.set('payload', offer.payload)
  if (offer.link !== undefined) map.set('link', offer.link)
  map.set('createdAt', offer.createdAt)
  map.set('expiresAt', offer.expiresAt)
  map.set('responses', new Y.Map<unknown>())
  childMap(session, 'handoffs').set(offer.id, map)
}

/** The map of one offer. */
export function offerMap(session: Y.Map<unknown>, offerId: string): Y.Map<unknown> | undefined {
  const handoffs = session.get('handoffs')
  const offer = handoffs instanceof Y.Map ? handoffs.get(offerId) : undefined
  return offer instanceof Y.Map ? offer : undefined
}

/** Record one device's answer to an offer (each device writes only its own key). */
export function respondToOffer(offer: Y.Map<unknown>, deviceId: string, action: 'accept' | 'decline', at: number): void {
  let responses = offer.get('responses')
  if (!(responses instanceof Y.Map)) {
    responses = new Y.Map<unknown>()
    offer.set('responses', responses)
  }
  ;(responses as Y.Map<unknown>).set(deviceId, { action, at })
}

/** A finite number of ms (a time field as the schema stores it). */
export function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}
