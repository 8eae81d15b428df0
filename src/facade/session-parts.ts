/**
 * Checking the turn parts an app gives `dev.sessions`, and the lease option and renewal its
 * writes share.
 *
 * @module
 */
import * as Y from 'yjs'
import { childMap, leaseOf, PART_TYPES, readClaims, sessionMap, type TurnPart } from '../crdt/sessions.js'
import { ValidationError } from '../errors.js'
import { requireJson, requireJsonObject, requireLabel } from './check-json-args.js'
import { MAX_TEXT_LENGTH, optionalNumber, requireObject, requireOneOf, requireText } from './check-args.js'
import { DEFAULT_LEASE_MS } from './session-api-types.js'


/**
 * The holder's lease is extended when it writes and less than half of it is left — by the length
 * it was granted (`span`), so renewals never compound.
 */
export function renewLease(doc: Y.Doc, sessionId: string, deviceId: string, now: number): void {
  const map = sessionMap(doc, sessionId)
  if (!map) return
  const claims = readClaims(map)
  const lease = leaseOf(claims, now)
  if (!lease || lease.deviceId !== deviceId || !lease.active) return
  const own = claims.get(deviceId)!
  const length = own.span ?? DEFAULT_LEASE_MS
  if (own.until - now < length / 2) childMap(map, 'claims').set(deviceId, { ...own, until: now + length, span: length })
}

/** The `leaseMs` option, checked, or the default lease. */
export function leaseOption(options: unknown): number {
  if (options === undefined) return DEFAULT_LEASE_MS
  const fields = requireObject(options, 'options')
  return optionalNumber(fields.leaseMs, 'leaseMs', 1, 7 * 24 * 3600_000) ?? DEFAULT_LEASE_MS
}

/** Validate one part as given by the app; returns the stored form. */
export function requirePart(value: unknown, name: string): TurnPart {
  const fields = requireObject(value, name)
  const type = requireOneOf(fields.type, PART_TYPES, `${name}.type`)
  const meta = fields.meta === undefined ? undefined : requireJsonObject(fields.meta, `${name}.meta`)
  const withMeta = <T extends TurnPart>(part: T): T => {
    if (meta) part.meta = meta
    return part
  }
  const optionalLabel = (key: string): string | undefined => (fields[key] === undefined ? undefined : requireLabel(fields[key], `${name}.${key}`))
  switch (type) {
    case 'text':
    case 'reasoning':
      return withMeta({ type, text: requireText(fields.text, `${name}.text`, { allowEmpty: true }), state: 'done' })
    case 'tool-call': {
      const part: TurnPart = {
        type,
        toolCallId: requireLabel(fields.toolCallId, `${name}.toolCallId`),
        toolName: requireLabel(fields.toolName, `${name}.toolName`),
        input: fields.input === undefined ? null : requireJson(fields.input, `${name}.input`),
      }
      if (fields.state !== undefined) part.state = requireOneOf(fields.state, ['input-streaming', 'input-available'] as const, `${name}.state`)
      if (fields.providerExecuted === true) part.providerExecuted = true
      if (fields.dynamic === true) part.dynamic = true
      return withMeta(part)
    }
    case 'tool-result': {
      const part: TurnPart = {
        type,
        toolCallId: requireLabel(fields.toolCallId, `${name}.toolCallId`),
        toolName: requireLabel(fields.toolName, `${name}.toolName`),
      }
      if (fields.output !== undefined) part.output = requireJson(fields.output, `${name}.output`)
      if (fields.errorText !== undefined) part.errorText = requireText(fields.errorText, `${name}.errorText`, { allowEmpty: true })
      return withMeta(part)
    }
    case 'file': {
      const url = fields.url
      if (typeof url !== 'string' || url.length === 0 || url.length > MAX_TEXT_LENGTH) {
        throw new ValidationError(`${name}.url must be a non-empty string of at most ${MAX_TEXT_LENGTH} characters (a reference, not the file)`)
      }
      const part: TurnPart = { type, mediaType: requireLabel(fields.mediaType, `${name}.mediaType`), url }
      const filename = optionalLabel('filename')
      if (filename !== undefined) part.filename = filename
      return withMeta(part)
    }
    case 'data': {
      const part: TurnPart = { type, name: requireLabel(fields.name, `${name}.name`), data: requireJson(fields.data ?? null, `${name}.data`) }
      const partId = optionalLabel('id')
      if (partId !== undefined) part.id = partId
      return withMeta(part)
    }
  }
}
