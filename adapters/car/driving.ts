/**
 * Driving context on a head unit (ARCHITECTURE.md "adapters/car"), built on the public presence
 * and sessions API: while the host says the car is driving, presence shows `activity: 'driving'`
 * and handoffs offered by the kinds in `autoAcceptFrom` (the phone and the glasses by default) are
 * accepted without a tap, so the conversation started on the glasses continues in the car; and a
 * glanceable read of the latest turn of the active session, truncated, for a cluster display or a
 * voice prompt that must not demand the driver's attention.
 *
 * @module
 */
import type { ContextSync, DeviceKind, HandoffRequest, Session } from '../../src/index.js'
import { ValidationError } from '../../src/index.js'

/** Handoff and glance settings. */
export interface DrivingPolicy {
  /** Device kinds whose handoffs the car accepts by itself while driving. Default phone and glasses. */
  autoAcceptFrom?: readonly DeviceKind[]
  /** Longest glance text, in characters. Default 120. */
  glanceChars?: number
}

/** What a glance shows: the latest turn of the session the car holds now. */
export interface Glance {
  sessionId: string
  title: string
  role: string
  /** The turn's text, cut to the glance length (with `…` when cut). */
  text: string
  truncated: boolean
  /** False while the turn is still streaming. */
  done: boolean
}

/** Default of {@link DrivingPolicy.autoAcceptFrom}. */
export const DEFAULT_AUTO_ACCEPT_FROM: readonly DeviceKind[] = ['phone', 'glasses']
/** Default of {@link DrivingPolicy.glanceChars}. */
export const DEFAULT_GLANCE_CHARS = 120

/** One device's driving state and handoff policy. */
export class Driving {
  private driving = false
  private activeSessionId: string | undefined
  private readonly autoAcceptFrom: readonly string[]
  private readonly glanceChars: number
  private readonly off: () => void
  private readonly accepting = new Set<string>()

  constructor(
    private readonly dev: ContextSync,
    policy: DrivingPolicy = {},
  ) {
    this.autoAcceptFrom = policy.autoAcceptFrom ?? DEFAULT_AUTO_ACCEPT_FROM
    this.glanceChars = requireGlanceChars(policy.glanceChars ?? DEFAULT_GLANCE_CHARS)
    this.off = dev.sessions.on('handoff', (request) => this.consider(request))
  }

  /** Whether the host last said the car is driving. */
  get isDriving(): boolean {
    return this.driving
  }

  /** The host says the car started or stopped driving. */
  set(driving: boolean): void {
    if (typeof driving !== 'boolean') throw new ValidationError('setDriving takes a boolean')
    this.driving = driving
    this.dev.presence.set({ activity: driving ? 'driving' : null })
    if (driving) for (const request of this.dev.sessions.pendingHandoffs()) this.consider(request)
  }

  /** The latest turn of the active session, cut to `maxChars` (default the policy's glance length). */
  glance(maxChars: number = this.glanceChars): Glance | undefined {
    const limit = requireGlanceChars(maxChars)
    const session = this.activeSession()
    const turn = session?.turns.at(-1)
    if (!session || !turn) return undefined
    const { text, truncated } = cut(turn.text, limit)
    return { sessionId: session.id, title: session.title, role: turn.role, text, truncated, done: turn.done }
  }

  /** The session the car took last (by handoff), else the newest it holds the lease of, else the newest. */
  activeSession(): Session | undefined {
    if (this.activeSessionId) {
      const taken = this.dev.sessions.get(this.activeSessionId)
      if (taken) return taken
    }
    const sessions = this.dev.sessions.list({ status: 'active', limit: 20 })
    return sessions.find((s) => s.activeDevice === this.dev.deviceId) ?? sessions[0]
  }

  /** Stop following handoffs (the profile is closing). */
  close(): void {
    this.off()
  }

  private consider(request: HandoffRequest): void {
    if (!this.driving || !this.autoAcceptFrom.includes(request.fromKind) || this.accepting.has(request.id)) return
    this.accepting.add(request.id)
    void request
      .accept()
      .then((outcome) => {
        if (outcome.status !== 'accepted') return
        this.activeSessionId = request.sessionId
        this.dev.presence.set({ activeSessionId: request.sessionId })
      })
      // Closed meanwhile, or the offer was taken by another device: nothing to show.
      .catch(() => undefined)
      .finally(() => this.accepting.delete(request.id))
  }
}

/**
 * `text` in at most `limit` characters (code points): cut before the last word that does not fit
 * when that loses at most a third, with `…` in place of what was left out.
 */
export function cut(text: string, limit: number): { text: string; truncated: boolean } {
  const chars = Array.from(text)
  if (chars.length <= limit) return { text, truncated: false }
  const kept = chars.slice(0, Math.max(0, limit - 1))
  if (!/\s/.test(chars[kept.length] ?? ' ')) {
    let space = kept.length - 1
    while (space >= 0 && !/\s/.test(kept[space] ?? '')) space--
    if (space >= (kept.length * 2) / 3) kept.length = space
  }
  return { text: `${kept.join('').trimEnd()}…`, truncated: true }
}

function requireGlanceChars(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > 10_000) {
    throw new ValidationError(`glance length must be a whole number of characters from 1 to 10 000, got ${String(value)}`)
  }
  return value
}
