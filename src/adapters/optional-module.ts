/**
 * Loading a Node dependency that only some consumers install (`better-sqlite3`: the SQLite store
 * and the relay's persistence). The package lists it as an optional peer dependency, so a browser
 * or glasses app never compiles a native module it does not use; whoever imports
 * `contextsync/sqlite` or runs the relay with a data folder installs it, and is told so plainly
 * when it is missing (README "Install").
 *
 * @module
 */
import { createRequire } from 'node:module'
import { ConfigError } from '../errors.js'

/**
 * `require(name)` from this package, or a `ConfigError` naming the install command when `name` is
 * not installed. `feature` says what needs it ("contextsync/sqlite").
 */
export function requireOptional<T>(name: string, feature: string): T {
  const load = createRequire(import.meta.url)
  try {
    return load(name) as T
  } catch (error) {
    const code = (error as { code?: unknown }).code
    if (code === 'MODULE_NOT_FOUND' && String((error as Error).message).includes(`'${name}'`)) {
      throw new ConfigError(`${feature} needs ${name}, which is not installed: run \`npm install ${name}\``)
    }
    throw error
  }
}
