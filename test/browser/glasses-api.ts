/**
 * The contract between test/browser/glasses-page.ts (the page) and the Node side that drives it:
 * what `window.glasses` offers. No side effects, so Node code may import it.
 */
import type { TransportStatus } from '../../src/index.js'

/** The database the glasses device lives in. */
export const GLASSES_DB = 'contextsync-glasses'

/** One record of an IndexedDB object store, as {@link GlassesApi.dumpIndexedDb} returns it. */
export interface DumpedRecord {
  database: string
  store: string
  /** The record's key, as JSON. */
  key: string
  /** The record's value: its bytes if it is binary, else its JSON text; base64. */
  value: string
  binary: boolean
}

/** What the page exposes as `window.glasses`. Every function is async (page.evaluate awaits it). */
export interface GlassesApi {
  /** Join the account with an invite code; the device lives in IndexedDB `GLASSES_DB`. */
  join(code: string, relayUrl: string, name: string): Promise<{ deviceId: string; kind: string; scopes: string[] }>
  /** Reopen from IndexedDB alone; without a relay URL the device opens offline (no transport). */
  open(relayUrl?: string): Promise<{ deviceId: string; kind: string; name: string; scopes: string[] }>
  remember(text: string, scope?: string): Promise<string>
  /** Start a conversation and append one user turn; returns the session id. */
  converse(title: string, text: string): Promise<string>
  list(): Promise<Array<{ id: string; text: string; scope: string }>>
  turns(sessionId: string): Promise<string[]>
  deviceId(): Promise<string>
  /** Latest transport status per scope (from the device's `status` events since open/join). */
  status(): Promise<Record<string, TransportStatus>>
  /** Everything the device reported through `rejected` / `storage-error`. */
  problems(): Promise<string[]>
  close(): Promise<void>
  /** Every record of every object store of `database` (default the device's). */
  dumpIndexedDb(database?: string): Promise<DumpedRecord[]>
  /** Open a bare WebSocket to `url`: 'opened', 'closed' (refused or failed) or 'no answer' within `timeoutMs`. */
  probeWebSocket(url: string, timeoutMs: number): Promise<'opened' | 'closed' | 'no answer'>
  /** Write a plaintext record into a throwaway database: the control for the byte searches. */
  writeControl(database: string, text: string): Promise<void>
}

declare global {
  interface Window {
    glasses?: GlassesApi
  }
}
