/**
 * `contextsync/sqlite` — durable device storage on SQLite (better-sqlite3). Node only: car head
 * units, PCs, servers.
 *
 * @module
 */
export { sqliteStorage, type SqliteStorage, type SqliteStorageOptions } from '../adapters/sqlite-storage.js'
