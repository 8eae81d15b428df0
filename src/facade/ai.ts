/**
 * The AI-context surface in one place, for the package entry point to re-export:
 * `export * from './facade/ai.js'` in `src/index.ts`.
 *
 * @module
 */
export { MemoryApi } from './memory.js'
export type {
  RememberInput,
  RememberOptions,
  RememberResult,
  ReconcileFn,
  ReconcileInput,
  ReconcileDecision,
  SupersedeInput,
  MemoryPatch,
  ListQuery,
  RecallQuery,
  RecallHit,
  MemoryChange,
  MemoryEvents,
  ExportOptions,
  MemoryExport,
  ImportOptions,
  ImportReport,
} from './memory-types.js'
export type { ImportSource } from './memory-file/format.js'
export { RRF_K } from './recall-index.js'
export {
  SessionsApi,
  SessionHandle,
  TurnStream,
  HandoffOffer,
  DEFAULT_LEASE_MS,
  DEFAULT_HANDOFF_EXPIRY_MS,
} from './sessions.js'
export type {
  SessionChange,
  SessionsEvents,
  SessionListQuery,
  AppendInput,
  TurnPartInput,
  HandoffRequest,
  HandoffOutcome,
  HandoffUpdate,
  ActiveDeviceChange,
} from './sessions.js'
export { PresenceApi, PRESENCE_SCOPE } from './presence.js'
export type { PresenceEntry, PresenceActivity, PresenceChange, PresenceEvents, PresenceOptions } from './presence.js'
export type { MemoryItem, MemoryKind, MemorySource } from '../crdt/memory.js'
export { MEMORY_KINDS, MAX_EMBEDDING_DIMENSIONS } from '../crdt/memory.js'
export type {
  Session,
  SessionLease,
  SessionStatus,
  Turn,
  TurnRole,
  TurnPart,
  TextPart,
  ReasoningPart,
  ToolCallPart,
  ToolResultPart,
  FilePart,
  DataPart,
  PartState,
  HandoffInfo,
  HandoffStatus,
} from '../crdt/sessions.js'
export { TURN_ROLES, PART_TYPES, SESSION_STATUSES } from '../crdt/sessions.js'
export type { JsonValue, JsonObject } from '../crdt/json.js'
