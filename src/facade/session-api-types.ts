/**
 * What `dev.sessions` takes and reports: its events, inputs and limits, and {@link SessionsHost},
 * the part of the sessions API that session handles and offers call back into.
 *
 * @module
 */
import type { JsonObject, JsonValue } from '../crdt/json.js'
import {
  type HandoffInfo,
  type Session,
  type SessionLease,
  type SessionStatus,
  type TurnRole,
} from '../crdt/sessions.js'
import type { Replica } from '../sync/replica.js'
import { type DeviceIdentity } from './identity.js'
import type { ScopeReplicas } from './memory.js'

/** What a session handle or handoff offer needs of the `SessionsApi` that made it. */
export interface SessionsHost {
  /** The device's scope replicas. */
  readonly scopes: ScopeReplicas
  /** The device's identity (absent on a device without one). */
  readonly identity?: DeviceIdentity | undefined
  /** One session as derived now, or `undefined` when it does not exist. */
  read(replica: Replica, id: string): Session | undefined
  /** The derived view of one session's offers. */
  offersOf(replica: Replica, sessionId: string): HandoffInfo[]
  /** Resolves once the offer is no longer pending. */
  settled(replica: Replica, sessionId: string, offerId: string): Promise<HandoffInfo>
}


/** Default lease a device takes on a session (start, claim, accepted handoff): 10 minutes. */
export const DEFAULT_LEASE_MS = 10 * 60_000
/** Default lifetime of a handoff offer: 60 s. */
export const DEFAULT_HANDOFF_EXPIRY_MS = 60_000
/** Largest handoff payload (JSON bytes). */
export const MAX_HANDOFF_PAYLOAD_BYTES = 16 * 1024
/** Most parts in one turn. */
export const MAX_PARTS = 256

/** A change to a session (its fields or its turns). */
export interface SessionChange {
  id: string
  scope: string
  origin: 'local' | 'remote'
  /** Turns added or changed by this change, when any. */
  turnIds?: string[]
}

/** A status change of a handoff offer, seen on every device that holds the session's scope. */
export interface HandoffUpdate {
  offer: HandoffInfo
}

/** The active device of a session changed (a claim or an accepted handoff won). */
export interface ActiveDeviceChange {
  sessionId: string
  scope: string
  deviceId: string
  previous: string
  lease: SessionLease
}


/** A turn part as given to `append` / `stream.part` (text and reasoning are complete). */
export type TurnPartInput =
  | { type: 'text'; text: string; meta?: JsonObject }
  | { type: 'reasoning'; text: string; meta?: JsonObject }
  | {
      type: 'tool-call'
      toolCallId: string
      toolName: string
      input?: JsonValue
      state?: 'input-streaming' | 'input-available'
      providerExecuted?: boolean
      dynamic?: boolean
      meta?: JsonObject
    }
  | { type: 'tool-result'; toolCallId: string; toolName: string; output?: JsonValue; errorText?: string; meta?: JsonObject }
  | { type: 'file'; mediaType: string; url: string; filename?: string; meta?: JsonObject }
  | { type: 'data'; name: string; id?: string; data: JsonValue; meta?: JsonObject }

/** Input of {@link SessionHandle.append}. */
export interface AppendInput {
  role: TurnRole
  /** Shorthand for one text part (placed before `parts`). */
  text?: string
  parts?: TurnPartInput[]
  /** A turn id of your own (unique in the session); default a random one. */
  id?: string
  /** App metadata; keys starting with `@` are reserved for adapters. */
  metadata?: JsonObject
}

/** Options of {@link SessionsApi.list}. */
export interface SessionListQuery {
  scope?: string
  status?: SessionStatus
  limit?: number
}

