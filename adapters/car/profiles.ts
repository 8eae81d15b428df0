/**
 * Driver profiles on one head unit (ARCHITECTURE.md "adapters/car"): each profile is one account's
 * member device, with its own store folder `<dataDir>/profiles/<id>/` (SQLite database, WAL) and
 * its own keys inside it. The list lives in `<dataDir>/profiles.json` — ids, display names and
 * whether a profile is a guest; nothing secret, nothing of any account. Removing a profile deletes
 * its folder and its line, so nothing of it stays in `dataDir`.
 *
 * @module
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, ValidationError } from '../../src/index.js'

/** A profile as `car.profiles.list()` shows it. */
export interface ProfileInfo {
  id: string
  /** Display name (the driver's, as the host app set it). */
  name: string
  /** A guest profile is removed when the drive ends (`car.endDrive()`, a switch, close, restart). */
  guest: boolean
  /** The profile open now. */
  active: boolean
}

interface SavedProfile {
  id: string
  name: string
  guest: boolean
}

interface SavedIndex {
  version: 1
  profiles: SavedProfile[]
}

const INDEX_FILE = 'profiles.json'
const PROFILES_DIR = 'profiles'
/** Store file of a profile, inside its folder. */
export const PROFILE_STORE = 'contextsync.db'
const PROFILE_ID = /^[a-z0-9][a-z0-9-]{0,31}$/

/** Validate a profile id: a short folder-safe name. */
export function requireProfileId(value: unknown): string {
  if (typeof value !== 'string' || !PROFILE_ID.test(value)) {
    throw new ValidationError(`a profile id is 1–32 lowercase letters, digits and dashes (like 'alice'), got ${JSON.stringify(value)}`)
  }
  return value
}

/** The profile list of one `dataDir`, kept on disk. */
export class ProfileIndex {
  private profiles: SavedProfile[]

  constructor(private readonly dataDir: string) {
    mkdirSync(join(dataDir, PROFILES_DIR), { recursive: true, mode: 0o700 })
    this.profiles = readIndex(join(dataDir, INDEX_FILE))
  }

  /** Every profile, in the order they were added. */
  all(): SavedProfile[] {
    return this.profiles.map((p) => ({ ...p }))
  }

  /** One profile's line, if listed. */
  get(id: string): SavedProfile | undefined {
    const found = this.profiles.find((p) => p.id === id)
    return found && { ...found }
  }

  /** Folder of a profile's store. */
  folder(id: string): string {
    return join(this.dataDir, PROFILES_DIR, requireProfileId(id))
  }

  /** Path of a profile's SQLite store. */
  storePath(id: string): string {
    return join(this.folder(id), PROFILE_STORE)
  }

  /** Make a profile's folder (owner-only) before its store is created; not listed until {@link add}. */
  prepare(id: string): void {
    if (this.get(id)) throw new ValidationError(`profile '${id}' exists already; remove it first or pick another id`)
    rmSync(this.folder(id), { recursive: true, force: true })
    mkdirSync(this.folder(id), { recursive: true, mode: 0o700 })
  }

  /** List a profile whose device was paired. */
  add(profile: SavedProfile): void {
    this.profiles = [...this.profiles.filter((p) => p.id !== profile.id), { ...profile }]
    this.save()
  }

  /** Delete a profile's folder (store, WAL, keys) and its line. */
  remove(id: string): void {
    // The line goes first: a power cut between the two leaves an unlisted folder, which the next
    // start deletes (see {@link sweep}), never a listed profile without its store.
    this.profiles = this.profiles.filter((p) => p.id !== id)
    this.save()
    rmSync(this.folder(id), { recursive: true, force: true })
  }

  /** Delete profile folders no line names (a pairing or a removal cut short by a power cut). */
  sweep(): void {
    for (const name of readdirSync(join(this.dataDir, PROFILES_DIR))) {
      if (PROFILE_ID.test(name) && !this.get(name)) rmSync(this.folder(name), { recursive: true, force: true })
    }
  }

  private save(): void {
    const path = join(this.dataDir, INDEX_FILE)
    const body: SavedIndex = { version: 1, profiles: this.profiles }
    // Written whole to a side file, flushed, then renamed over: a power cut leaves the old list or the new.
    const tmp = `${path}.tmp`
    writeFileSync(tmp, JSON.stringify(body), { mode: 0o600 })
    const fd = openSync(tmp, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
    const dir = openSync(this.dataDir, 'r')
    try {
      fsyncSync(dir)
    } finally {
      closeSync(dir)
    }
  }
}

function readIndex(path: string): SavedProfile[] {
  if (!existsSync(path)) return []
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    throw new ConfigError(`${path} is not a profile list (damaged?); move it away to start over`)
  }
  const body = parsed as Partial<SavedIndex> | null
  if (!body || body.version !== 1 || !Array.isArray(body.profiles)) throw new ConfigError(`${path} is not a profile list of this version`)
  return body.profiles.filter(
    (p): p is SavedProfile => typeof p === 'object' && p !== null && typeof p.id === 'string' && PROFILE_ID.test(p.id) && typeof p.name === 'string' && typeof p.guest === 'boolean',
  )
}
