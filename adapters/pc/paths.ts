/**
 * Where a PC keeps its device: the OS's per-user data directory for the store (XDG on Linux,
 * Application Support on macOS, AppData on Windows, through `env-paths`) and the per-user config
 * directory for the key file — kept apart on purpose, so a backup or a synced copy of the data
 * folder does not carry the key that unwraps the device's seeds (THREAT_MODEL.md "A PC's store
 * and its key file").
 *
 * `env-paths` reads `process.env` and the home directory when called, so a fresh `HOME` or
 * `XDG_DATA_HOME` is honoured.
 *
 * @module
 */
import { join } from 'node:path'
import envPaths from 'env-paths'

/** The per-user folders of a PC device. */
export interface PcPaths {
  /** The store (`contextsync.db`) and `pc.json` live here. */
  data: string
  /** The key file (`device.key`) lives here. */
  config: string
}

/** Application name in the per-user folders (no `-nodejs` suffix: the folders are the product's). */
export const PC_APP_NAME = 'contextsync'

/** File names inside the folders. */
export const PC_FILES = { store: 'contextsync.db', config: 'pc.json', keyFile: 'device.key', lock: 'contextsync.lock', outbox: 'outbox.json' } as const

/** The per-user data and config folders, as the OS names them now. */
export function pcPaths(): PcPaths {
  const paths = envPaths(PC_APP_NAME, { suffix: '' })
  return { data: paths.data, config: paths.config }
}

/** The default key file: `<config>/device.key`. */
export function defaultKeyFile(): string {
  return join(pcPaths().config, PC_FILES.keyFile)
}
