/**
 * The vocabulary of the sessions schema (`sessions.ts`): roles, statuses, part types, and the
 * shapes a reader returns — sessions, turns, parts, leases, claims and handoff offers.
 *
 * @module
 */
import type { JsonObject, JsonValue } from './json.js'

/** Who spoke a turn. */
export const TURN_ROLES = ['user', 'assistant', 'system', 'tool'] as const
/** One of {@link TURN_ROLES}. */
export type TurnRole = (typeof TURN_ROLES)[number]

/** Session lifecycle. */
export const SESSION_STATUSES = ['active', 'archived'] as const
/** One of {@link SESSION_STATUSES}. */
export type SessionStatus = (typeof SESSION_STATUSES)[number]

/** Streaming state of a text or reasoning part. */
export type PartState = 'streaming' | 'done'

/** Types of turn parts. */
export const PART_TYPES = ['text', 'reasoning', 'tool-call', 'tool-result', 'file', 'data'] as const
/** One of {@link PART_TYPES}. */
export type PartType = (typeof PART_TYPES)[number]

/** Fields every part may carry. */
export interface PartBase {
  /**
   * Opaque data carried along with the part and never interpreted (adapters keep what their
   * format has and contextsync does not, e.g. provider metadata, under their own key).
   */
  meta?: JsonObject
}

/** Text shown to the user; streams token by token. */
export interface TextPart extends PartBase {
  type: 'text'
  text: string
  state: PartState
}

/** Model reasoning ("thinking"); streams like text. */
export interface ReasoningPart extends PartBase {
  type: 'reasoning'
  text: string
  state: PartState
}

/** A call of a tool by the assistant. */
export interface ToolCallPart extends PartBase {
  type: 'tool-call'
  toolCallId: string
  toolName: string
  input: JsonValue
  /** `input-streaming` while the arguments are still being generated. Default `input-available`. */
  state?: 'input-streaming' | 'input-available'
  /** The provider ran the tool itself (e.g. a hosted web search). */
  providerExecuted?: boolean
  /** A tool not known to the app at build time (AI SDK "dynamic tool"). */
  dynamic?: boolean
}

/** The result of a tool call; `errorText` when it failed. */
export interface ToolResultPart extends PartBase {
  type: 'tool-result'
  toolCallId: string
  toolName: string
  output?: JsonValue
  errorText?: string
}

/** A reference to a file (a URL, a data URL, or an app-specific URI) — never the file itself. */
export interface FilePart extends PartBase {
  type: 'file'
  mediaType: string
  url: string
  filename?: string
}

/** App-defined structured data. */
export interface DataPart extends PartBase {
  type: 'data'
  name: string
  id?: string
  data: JsonValue
}

/** One typed part of a turn. */
export type TurnPart = TextPart | ReasoningPart | ToolCallPart | ToolResultPart | FilePart | DataPart

/** A turn as the app sees it. */
export interface Turn {
  id: string
  role: TurnRole
  /** The turn's text parts, concatenated. */
  text: string
  parts: TurnPart[]
  /** The device that wrote it. */
  deviceId: string
  createdAt: number
  updatedAt: number
  /** False while the turn is still being streamed. */
  done: boolean
  /** App metadata of the turn. Keys starting with `@` are reserved for adapters. */
  metadata?: JsonObject
}

/** Which device holds the conversation, until when. */
export interface SessionLease {
  deviceId: string
  /** Claims only ever grow the term; the highest `(term, deviceId)` wins. */
  term: number
  acquiredAt: number
  expiresAt: number
  /** The handoff offer the lease was taken through, if any. */
  offerId?: string
  /** `expiresAt` is still in the future (by this device's clock). */
  active: boolean
}

/** Where a handoff offer stands. */
export type HandoffStatus = 'pending' | 'accepted' | 'declined' | 'expired' | 'cancelled'

/** What a handoff offer says, as stored and as the app sees it. */
export interface OfferFields {
  id: string
  /** Offering device. */
  from: string
  /** Target device id, or device kind when `toKind`. */
  to: string
  toKind: boolean
  payload?: JsonValue
  /** A deep link for the target to open. */
  link?: string
  createdAt: number
  expiresAt: number
}

/** A handoff offer as stored (before its status is derived). */
export interface RawOffer extends OfferFields {
  cancelledAt?: number
  /** Answers by device id. */
  responses: Map<string, { action: 'accept' | 'decline'; at: number }>
}

/** A handoff offer as the app sees it. */
export interface HandoffInfo extends OfferFields {
  sessionId: string
  scope: string
  status: HandoffStatus
  /** The device that accepted or declined. */
  respondedBy?: string
  respondedAt?: number
}

/** A session as the app sees it. */
export interface Session {
  id: string
  title: string
  scope: string
  status: SessionStatus
  createdAt: number
  updatedAt: number
  /** Device holding (or that last held) the conversation: the lease winner. */
  activeDevice: string
  /** The current lease, if any device ever claimed one. */
  lease?: SessionLease
  /** A running summary the app keeps. */
  summary?: string
  turns: Turn[]
  /** Handoff offers of this session (pending and past). */
  handoffs: HandoffInfo[]
}

/** A claim in the `claims` map. */
export interface Claim {
  term: number
  at: number
  until: number
  /** Lease length granted (ms); renewals extend `until` by this much. Absent in older claims. */
  span?: number
  offer?: string
}
