/**
 * The contract between test/browser/glasses-link-page.ts (the page: `openGlasses` from
 * `contextsync/glasses` on IndexedDB) and test/browser/glasses-link.test.ts, which drives it
 * through `window.glassesLink`. No side effects, so Node code may import it.
 */
import type { GlassesPath } from '../../adapters/glasses/index.js'

/** The IndexedDB database the glasses live in. */
export const GLASSES_LINK_DB = 'contextsync-glasses-link'

/** One turn as the page reports it. */
export interface PageTurn {
  role: string
  text: string
  done: boolean
  deviceId: string
}

/** What the page exposes as `window.glassesLink`. Every function is async (page.evaluate awaits it). */
export interface GlassesLinkApi {
  /** First open: pair over the relay with the phone's invite code (Wi-Fi up, no link yet). */
  join(code: string, relayUrl: string, name: string): Promise<{ deviceId: string; scopes: string[] }>
  /** Reopen from IndexedDB alone (Wi-Fi down: nothing reaches the relay directly). */
  open(relayUrl: string): Promise<{ deviceId: string; scopes: string[] }>
  /**
   * Open a WebSocket to `url` — it stands in for the BLE characteristic pair — and hand it to
   * `connectLink` as a channel of `mtu` bytes; resolves once the socket is open.
   */
  linkUp(url: string, mtu: number): Promise<void>
  /** Close the link's socket (the phone goes out of range). */
  linkDown(): Promise<void>
  /** The host's view of Wi-Fi. */
  setWifi(up: boolean): Promise<void>
  /** Where each held scope's room goes now. */
  paths(): Promise<Record<string, GlassesPath | undefined>>
  remember(text: string): Promise<string>
  list(): Promise<Array<{ id: string; text: string; scope: string }>>
  /** Start a conversation whose first user turn is streamed in `chunks` (dictation), `gapMs` apart. */
  converse(title: string, chunks: string[], gapMs: number): Promise<string>
  turns(sessionId: string): Promise<PageTurn[]>
  /** Texts of the answer turn `turnIndex` seen in the page while it streamed, in order (distinct values). */
  seenWhileStreaming(sessionId: string, turnIndex: number): Promise<string[]>
  /** Everything the device reported through `rejected` / `storage-error` / the link's errors. */
  problems(): Promise<string[]>
  close(): Promise<void>
}

declare global {
  interface Window {
    glassesLink?: GlassesLinkApi
  }
}
