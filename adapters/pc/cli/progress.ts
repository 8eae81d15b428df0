/**
 * Progress of the initial sync of every room this PC holds — one per held scope, the device-local
 * scope aside, which never leaves the device. Per room: whether the relay's copy of its sealed log
 * has arrived (the transport reports `synced` once the relay's sync reply is applied), and how many
 * sealed envelopes (updates and snapshots) and bytes reached this PC from the relay; in all, where
 * a peer announced its seqs in sealed presence, how many of the announced envelopes are applied
 * (ARCHITECTURE.md "One receive, end to end"; WIRE.md "Presence and seq announcements").
 *
 * The relay answers whatever it stores, so a room syncs with no other device online: the counts
 * never wait for a peer's announcement. Every number only grows. Reports go to a callback — at
 * start, when a room becomes synced, every 250 ms, and once at the end (before `stop()` resolves);
 * {@link progressPrinter} writes them on stderr. Only counts leave this module: never content,
 * keys, ids or envelope bytes.
 *
 * @module
 */
import type * as Y from 'yjs'
import type { CliIo } from '../../../src/cli-io.js'
import { sealedLog } from '../../../src/crdt/sealed-log.js'
import { parseEnvelope } from '../../../src/crypto/envelope.js'
import { isDeviceLocal } from '../../../src/facade/builtin-scopes.js'
import { STORAGE_ORIGIN } from '../../../src/sync/log-store.js'
import type { PcDevice } from '../open-pc.js'

/** One room's part of a {@link SyncProgress}. */
export interface RoomProgress {
  /** The scope the room carries (shown only to this PC's own user). */
  scope: string
  /** The relay's copy of the room has arrived (stays true once reached). */
  synced: boolean
  /** Sealed envelopes that reached this PC from the relay, and their bytes. */
  updates: number
  bytes: number
}

/** Where the initial sync stands. Every count only grows from one report to the next. */
export interface SyncProgress {
  rooms: number
  roomsSynced: number
  /** Sealed envelopes received from the relay in all rooms, and their bytes. */
  updates: number
  bytes: number
  /**
   * Envelopes applied of those the peers announced, once some peer announced any (a peer online
   * now or recently); absent before.
   */
  applied?: number
  announced?: number
  /** Every room is synced. */
  synced: boolean
  perRoom: RoomProgress[]
}

/** Why a report was made. */
export type ReportReason = 'start' | 'room' | 'tick' | 'final'

/** Options of {@link trackInitialSync}. */
export interface InitialSyncOptions {
  /** Called with each report; `final` exactly once. */
  report(progress: SyncProgress, reason: ReportReason): void
  /**
   * Count envelopes of other devices already in a room's log when it is first seen as received.
   * Right for a store that was empty before this process (just paired): all of it came from the
   * relay, some maybe before tracking began. Wrong for a reopened store (it was loaded from disk).
   */
  countPresent?: boolean
  /** Between two `tick` reports. Default 250 ms. */
  intervalMs?: number
}

/** A running {@link trackInitialSync}. */
export interface InitialSync {
  /**
   * Resolves after the final report: `synced` true once every room synced, false when
   * {@link stop} came first.
   */
  readonly done: Promise<SyncProgress>
  /** Where it stands now (no report). */
  current(): SyncProgress
  /** Stop tracking: makes the final report (unless made already), then resolves with it. */
  stop(): Promise<SyncProgress>
}

interface Room {
  scope: string
  synced: boolean
  updates: number
  bytes: number
  /** The log being observed, and how to stop observing it. */
  log?: Y.Array<Uint8Array>
  unobserve?: () => void
}

/**
 * Track the initial sync of the rooms `pc` holds until every one is synced or {@link InitialSync.stop}
 * is called. Rooms of scopes granted meanwhile join the count; a room the PC stops holding stays
 * counted as it was.
 */
export function trackInitialSync(pc: PcDevice, options: InitialSyncOptions): InitialSync {
  const rooms = new Map<string, Room>()
  let applied = 0
  let announced = 0
  let finished: SyncProgress | undefined
  let resolveDone!: (progress: SyncProgress) => void
  const done = new Promise<SyncProgress>((resolve) => (resolveDone = resolve))

  const heldScopes = (): string[] => {
    try {
      return pc.sync.scopes.available().filter((scope) => !isDeviceLocal(scope))
    } catch {
      // Closed under us: nothing more to learn.
      return []
    }
  }

  /** Observe the room's sealed log as soon as its replica is open (before the relay answers). */
  const watch = (room: Room): void => {
    const replica = pc.sync.replica(room.scope)
    if (!replica) return
    const log = sealedLog(replica.outer)
    if (room.log === log) return
    room.unobserve?.()
    if (options.countPresent === true && room.log === undefined) {
      for (const entry of log.toArray()) count(room, entry, true)
    }
    const observer = (event: Y.YArrayEvent<Uint8Array>, transaction: Y.Transaction): void => {
      // This device's own appends are local; what storage replays was here before.
      if (transaction.local || transaction.origin === STORAGE_ORIGIN) return
      for (const change of event.changes.delta) {
        if (Array.isArray(change.insert)) for (const entry of change.insert as unknown[]) count(room, entry, false)
      }
    }
    log.observe(observer)
    room.log = log
    room.unobserve = () => log.unobserve(observer)
  }

  const count = (room: Room, entry: unknown, skipOwn: boolean): void => {
    if (!(entry instanceof Uint8Array)) return
    if (skipOwn) {
      const parsed = parseEnvelope(entry)
      if (parsed.ok && parsed.value.senderId === pc.sync.deviceId) return
    }
    room.updates++
    room.bytes += entry.byteLength
  }

  /** Bring the room list, flags and announced counts up to date; true when a room just synced. */
  const refresh = (): boolean => {
    let newlySynced = false
    for (const scope of heldScopes()) if (!rooms.has(scope)) rooms.set(scope, { scope, synced: false, updates: 0, bytes: 0 })
    let nowApplied = 0
    let nowAnnounced = 0
    for (const room of rooms.values()) {
      watch(room)
      if (!room.log) continue
      if (!room.synced && connection(room.scope) === 'synced') {
        room.synced = true
        newlySynced = true
      }
      const progress = peerProgress(room.scope)
      nowApplied += progress.applied
      nowAnnounced += progress.announced
    }
    // A peer revoked or forgotten drops out of the sums: the counts never go back.
    announced = Math.max(announced, nowAnnounced)
    applied = Math.min(announced, Math.max(applied, nowApplied))
    return newlySynced
  }

  const connection = (scope: string): string => {
    try {
      return pc.connection(scope)
    } catch {
      return 'connecting'
    }
  }

  const peerProgress = (scope: string): { applied: number; announced: number } => {
    try {
      return pc.syncProgress(scope)
    } catch {
      return { applied: 0, announced: 0 }
    }
  }

  const snapshot = (): SyncProgress => {
    const perRoom = [...rooms.values()].map(({ scope, synced, updates, bytes }) => ({ scope, synced, updates, bytes }))
    const roomsSynced = perRoom.filter((r) => r.synced).length
    return {
      rooms: perRoom.length,
      roomsSynced,
      updates: perRoom.reduce((n, r) => n + r.updates, 0),
      bytes: perRoom.reduce((n, r) => n + r.bytes, 0),
      ...(announced > 0 && { applied, announced }),
      synced: roomsSynced === perRoom.length,
      perRoom,
    }
  }

  const finish = (): SyncProgress => {
    if (finished) return finished
    clearInterval(timer)
    offStatus()
    refresh()
    for (const room of rooms.values()) room.unobserve?.()
    finished = snapshot()
    try {
      options.report(finished, 'final')
    } finally {
      resolveDone(finished)
    }
    return finished
  }

  /** Report, and finish once every room is synced. */
  const step = (reason: ReportReason): void => {
    if (finished) return
    const newlySynced = refresh()
    const progress = snapshot()
    if (progress.synced && reason !== 'start') return void finish()
    options.report(progress, newlySynced && reason === 'tick' ? 'room' : reason)
    if (progress.synced) finish()
  }

  const offStatus = pc.sync.on('status', ({ scope, status }) => {
    const room = rooms.get(scope)
    if (!room || finished) return
    // The first status of a room comes before its data: start observing its log now.
    watch(room)
    if (status === 'synced' && !room.synced) step('room')
  })
  const timer = setInterval(() => step('tick'), options.intervalMs ?? 250)
  // A progress display must not keep a process alive on its own.
  ;(timer as { unref?: () => void }).unref?.()
  step('start')

  return {
    done,
    current() {
      if (finished) return finished
      refresh()
      return snapshot()
    },
    stop: () => Promise.resolve(finish()),
  }
}

/** `2 rooms, 1604 updates, 1.2 MiB` */
export function progressSummary(progress: SyncProgress): string {
  return `${progress.rooms} room${progress.rooms === 1 ? '' : 's'}, ${progress.updates} update${progress.updates === 1 ? '' : 's'}, ${bytesText(progress.bytes)}`
}

/** The JSON object of a progress line. */
export function progressJson(progress: SyncProgress): Record<string, number | boolean | string> {
  return {
    event: 'progress',
    rooms: progress.rooms,
    roomsSynced: progress.roomsSynced,
    updates: progress.updates,
    bytes: progress.bytes,
    ...(progress.announced !== undefined && { applied: progress.applied ?? 0, announced: progress.announced }),
  }
}

const BAR_WIDTH = 20

/** The one-line bar of a terminal. */
export function progressBar(progress: SyncProgress): string {
  const filled = progress.rooms === 0 ? BAR_WIDTH : Math.round((progress.roomsSynced / progress.rooms) * BAR_WIDTH)
  const peers = progress.announced === undefined ? '' : ` · applied ${progress.applied ?? 0} of ${progress.announced} announced`
  return `${progress.synced ? 'synced ' : 'syncing'} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${progress.roomsSynced}/${progress.rooms} rooms · ${progress.updates} updates · ${bytesText(progress.bytes)}${peers}`
}

/** Writes reports on stderr (see {@link progressPrinter}). */
export interface ProgressPrinter {
  report(progress: SyncProgress, reason: ReportReason): void
  /**
   * Before other output reaches the terminal: clear the bar (so that output does not land in the
   * middle of it); the next report draws it again. Nothing to do for JSON lines.
   */
  clear(): void
}

/**
 * Reports on stderr: on a terminal one bar rewritten in place (`\r`), ended by a newline at the
 * final report; elsewhere one JSON line per report (`{"event":"progress",…}`, the final one with
 * `"final":true`), a tick that changed nothing left out so a log does not fill with copies.
 */
export function progressPrinter(io: CliIo): ProgressPrinter {
  let last = ''
  if (io.stderrIsTty === true) {
    let shown = false
    return {
      report(progress, reason) {
        const text = progressBar(progress)
        if (reason === 'tick' && text === last && shown) return
        last = text
        shown = reason !== 'final'
        io.stderr(`\r${text}\x1b[K${reason === 'final' ? '\n' : ''}`)
      },
      clear() {
        if (shown) io.stderr('\r\x1b[K')
        shown = false
      },
    }
  }
  return {
    report(progress, reason) {
      const line = JSON.stringify({ ...progressJson(progress), ...(reason === 'final' && { final: true }) })
      if (reason === 'tick' && line === last) return
      last = line
      io.stderr(`${line}\n`)
    },
    clear() {},
  }
}

/** A byte count as people read it. */
export function bytesText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}
