/**
 * What one relay node counts of its store for the quotas: rows and bytes per room, bytes and
 * rooms per account, the estimated merged size (README "The relay", storage quotas).
 *
 * Quotas count a room by its *merged size*: what a merge would store. Stored rows overstate it
 * between merges (an update's deletions only shrink storage when merged), so each room keeps an
 * estimate, updated per update without touching the rest of the room — plus the update's bytes,
 * minus the live content its deletions remove (`room-size.ts`) — and set exactly at every merge.
 * The estimate never undercounts (deleted items' own ids are not subtracted); when it reaches a
 * quota, the connection merges the room for an exact figure, but only once at least an eighth of
 * the room was appended since the last merge — so merge work stays proportional to bytes written —
 * or when the overcount could be the whole excess, once a 64th of the room was appended or twenty
 * times the last merge's encoding time passed (`Room.mayMergeForExactSize`), so a room that fits
 * is not refused.
 *
 * The counts are this node's view: taken from the store at start and on every room load, then
 * kept up per update. With a store several nodes share (`RelayStore.shared`), the store checks the
 * account quota and the room caps again atomically with each append, so writes spread over nodes
 * cannot pass them; the relay-wide figures (all rooms, all stored bytes) follow the store's
 * {@link RelayStore.usage}, read every second ({@link RelayStorage.setSharedUsage}), plus what this node
 * added since the last read.
 *
 * @module
 */
import { accountOfRoom, passBytes, revocationBytes, type RelayStore, type StoreUsage, type StoredPass, type StoredRevocation, type StoredUpdate } from './store.js'

interface RoomUsage {
  rows: number
  /** Bytes of the stored rows. */
  bytes: number
  /** Estimated merged size (see the module comment). */
  size: number
  /** `bytes` right after the last merge (or at start): what was appended since is `bytes - base`. */
  base: number
}

/**
 * A relay store plus the accounting the quotas need. Rooms count against their account while
 * they hold stored bytes or are open.
 */
export class RelayStorage {
  private readonly usage = new Map<string, RoomUsage>()
  private readonly accountBytes = new Map<string, number>()
  private readonly accountSize = new Map<string, number>()
  private readonly accountRooms = new Map<string, Set<string>>()
  private readonly open = new Set<string>()
  private readonly kept: StoredRevocation[] = []
  private total = 0
  private totalEstimate = 0
  private rooms = 0
  /** The store's relay-wide figures at the last read, with this node's own at that moment. */
  private shared: { usage: StoreUsage; size: number; rooms: number } | undefined

  /** Read the store's summary, revocations and passes and count them. */
  static async open(store: RelayStore): Promise<RelayStorage> {
    const storage = new RelayStorage(store)
    for (const { roomId, rows, bytes } of await store.summary()) storage.setUsage(roomId, rows, bytes)
    for (const revocation of await store.revocations()) storage.countRevocation(revocation)
    for (const pass of await store.passes()) storage.addKeptBytes(pass.accountId, passBytes(pass))
    return storage
  }

  private constructor(readonly store: RelayStore) {}

  /** A room was loaded: its counts become exactly what was read. */
  loaded(roomId: string, rows: readonly StoredUpdate[]): void {
    const bytes = rows.reduce((n, row) => n + row.data.length, 0)
    if (rows.length === 0 && !this.usage.has(roomId)) return
    this.setUsage(roomId, rows.length, bytes)
  }

  /** Count one update row the room appended (or another node did). */
  recordAppend(roomId: string, bytes: number): void {
    const u = this.roomUsage(roomId)
    u.rows += 1
    u.bytes += bytes
    u.size += bytes
    this.addRoom(roomId)
    this.addBytes(roomId, bytes)
    this.addSize(roomId, bytes)
  }

  /**
   * Lower a room's estimated merged size by `freed` bytes of content its latest update deleted
   * (they leave storage at the next merge). Never below zero.
   */
  shrink(roomId: string, freed: number): void {
    const u = this.usage.get(roomId)
    if (!u || freed <= 0) return
    const delta = Math.min(u.size, freed)
    u.size -= delta
    this.addSize(roomId, -delta)
  }

  /**
   * The room was merged into `size` bytes: the estimate becomes exact, and appends count from here
   * (the store replaces the rows right after; {@link recordCompact} then sets the stored bytes).
   */
  setExactSize(roomId: string, size: number): void {
    const u = this.usage.get(roomId)
    if (!u) return
    this.addSize(roomId, size - u.size)
    u.size = size
    u.base = u.bytes
  }

  /** A compaction replaced `rows` rows of `bytes` bytes by one merged row of `merged` bytes. */
  recordCompact(roomId: string, rows: number, bytes: number, merged: number): void {
    const u = this.usage.get(roomId)
    if (!u) return
    u.rows = Math.max(1, u.rows - rows + 1)
    const before = u.bytes
    u.bytes = Math.max(merged, u.bytes - bytes + merged)
    u.base = u.bytes
    this.addBytes(roomId, u.bytes - before)
  }

  /** The room's rows were deleted. */
  recordRemove(roomId: string): void {
    const before = this.usage.get(roomId)
    this.usage.delete(roomId)
    this.addBytes(roomId, -(before?.bytes ?? 0))
    this.addSize(roomId, -(before?.size ?? 0))
    if (!this.open.has(roomId)) this.removeRoom(roomId)
  }

  /** Mark a room open (it counts against the room quota even before it stores anything). */
  markOpen(roomId: string): void {
    this.open.add(roomId)
    this.addRoom(roomId)
  }

  /** Mark a room closed; it stops counting when it stores nothing. */
  markClosed(roomId: string): void {
    this.open.delete(roomId)
    if (!this.usage.has(roomId)) this.removeRoom(roomId)
  }

  /** True when the room has stored rows or is open. */
  hasRoom(roomId: string): boolean {
    return this.usage.has(roomId) || this.open.has(roomId)
  }

  /** Ids of every room with stored rows. */
  storedRoomIds(): string[] {
    return [...this.usage.keys()]
  }

  /** Rows stored for a room. */
  rows(roomId: string): number {
    return this.usage.get(roomId)?.rows ?? 0
  }

  /** Bytes stored for a room. */
  roomBytes(roomId: string): number {
    return this.usage.get(roomId)?.bytes ?? 0
  }

  /** Bytes stored for an account (rows, before merging). */
  bytesOfAccount(accountId: string): number {
    return this.accountBytes.get(accountId) ?? 0
  }

  /** Estimated merged size of a room: what quotas count. */
  roomSize(roomId: string): number {
    return this.usage.get(roomId)?.size ?? 0
  }

  /** Bytes appended to a room since its last merge. */
  appendedSinceMerge(roomId: string): number {
    const u = this.usage.get(roomId)
    return u ? u.bytes - u.base : 0
  }

  /** Estimated merged size of an account's rooms. */
  sizeOfAccount(accountId: string): number {
    return this.accountSize.get(accountId) ?? 0
  }

  /**
   * Estimated merged size over all accounts; with a shared store, over every node: the store's
   * figure at the last {@link setSharedUsage} plus this node's growth since (never below this node's).
   */
  get totalSize(): number {
    const shared = this.shared
    return shared ? Math.max(this.totalEstimate, shared.usage.size + this.totalEstimate - shared.size) : this.totalEstimate
  }

  /** Rooms (stored or open) over all accounts; with a shared store, every node's (like {@link totalSize}). */
  get roomCount(): number {
    const shared = this.shared
    return shared ? Math.max(this.rooms, shared.usage.rooms + this.rooms - shared.rooms) : this.rooms
  }

  /**
   * The shared store's relay-wide figures were just read ({@link RelayStore.usage}): relay-wide
   * caps compare with them from now on, plus what this node adds.
   */
  setSharedUsage(usage: StoreUsage): void {
    this.shared = { usage, size: this.totalEstimate, rooms: this.rooms }
  }

  /** Revocations read from the store at start plus those saved since. */
  revocations(): readonly StoredRevocation[] {
    return this.kept
  }

  /**
   * Keep a verified revocation in the store. Its bytes count against its account's stored bytes
   * — an account could otherwise publish and delete revocations of made-up devices to grow the
   * relay's store without bound — but it is always kept: it arrived with an update the quota
   * already admitted. Call once per account and device.
   */
  saveRevocation(revocation: StoredRevocation): Promise<void> {
    this.countRevocation(revocation)
    return this.store.saveRevocation(revocation)
  }

  /**
   * Keep a verified pass in the store when it is the newest of its device; true when it was. Its
   * bytes count against its account for the same reason as a revocation's (an account could
   * publish passes of made-up devices), replacing those of the older pass.
   */
  async savePass(pass: StoredPass): Promise<boolean> {
    const saved = await this.store.savePass(pass)
    if (saved.kept) this.addKeptBytes(pass.accountId, saved.growth)
    return saved.kept
  }

  /** Rooms (stored or open) of an account. */
  roomsOfAccount(accountId: string): number {
    return this.accountRooms.get(accountId)?.size ?? 0
  }

  /** Bytes stored over all accounts. */
  get totalBytes(): number {
    return this.total
  }

  private setUsage(roomId: string, rows: number, bytes: number): void {
    const before = this.usage.get(roomId)
    this.usage.set(roomId, { rows, bytes, size: bytes, base: bytes })
    this.addRoom(roomId)
    this.addBytes(roomId, bytes - (before?.bytes ?? 0))
    this.addSize(roomId, bytes - (before?.size ?? 0))
  }

  private roomUsage(roomId: string): RoomUsage {
    let u = this.usage.get(roomId)
    if (!u) this.usage.set(roomId, (u = { rows: 0, bytes: 0, size: 0, base: 0 }))
    return u
  }

  private addSize(roomId: string, delta: number): void {
    this.addAccountSize(accountOfRoom(roomId), delta)
  }

  private addAccountSize(account: string, delta: number): void {
    this.accountSize.set(account, (this.accountSize.get(account) ?? 0) + delta)
    this.totalEstimate += delta
  }

  private countRevocation(revocation: StoredRevocation): void {
    this.kept.push(revocation)
    this.addKeptBytes(revocation.accountId, revocationBytes(revocation))
  }

  /** Count bytes of a kept statement (revocation, pass) against its account. */
  private addKeptBytes(accountId: string, bytes: number): void {
    this.addAccountSize(accountId, bytes)
    this.accountBytes.set(accountId, (this.accountBytes.get(accountId) ?? 0) + bytes)
    this.total += bytes
  }

  private addBytes(roomId: string, delta: number): void {
    const account = accountOfRoom(roomId)
    this.accountBytes.set(account, (this.accountBytes.get(account) ?? 0) + delta)
    this.total += delta
  }

  private addRoom(roomId: string): void {
    const account = accountOfRoom(roomId)
    let set = this.accountRooms.get(account)
    if (!set) this.accountRooms.set(account, (set = new Set()))
    if (set.has(roomId)) return
    set.add(roomId)
    this.rooms += 1
  }

  private removeRoom(roomId: string): void {
    const account = accountOfRoom(roomId)
    const set = this.accountRooms.get(account)
    if (set?.delete(roomId)) this.rooms -= 1
    if (set?.size === 0) this.accountRooms.delete(account)
  }
}
