/**
 * The signed JSONL file format of a memory export: writing its lines, and verifying and admitting
 * them on import (`export.ts` and `import.ts` beside it run the two operations).
 *
 * ```
 * line 1 (header): {"format":"contextsync/memory-export","version":2,"accountId":…,"rootPublicKey":…,
 *                   "signer":…,"signPublicKey":…,"certificate":…,"scope":…,"exportedAt":…,"count":…,
 *                   "exportId":…,"sig":…}
 * line 2…n       : {"n":k,"memory":{…},"sig":…}
 * ```
 * - Binary values are unpadded base64url; `embedding` is the little-endian float32 bytes.
 * - `header.sig` = Ed25519(signer, domain "contextsync/v1/memory-export-header", canonical JSON of the
 *   header without `sig`); the k-th memory line's `sig` = Ed25519(signer, domain
 *   "contextsync/v1/memory-export", the UTF-8 string `accountId \n exportId \n n \n canonical JSON of
 *   memory`), where `n` (1..count) is the line's number in the export, stated in the line.
 *   Canonical JSON = keys sorted at every level, no whitespace. (A domain-separated signature
 *   signs the length-prefixed domain followed by the message; see `signDetached`.)
 * - Binding each line to the export's random `exportId` and its number makes lines spliced in from
 *   another export fail, and missing lines precise to report: after the last line, every number of
 *   1..count not seen is one refusal ("memory n of the export is missing"). A lost or garbled line
 *   costs only itself; order does not matter.
 * - Version 1 files (before `exportId`, written by pre-release builds only) are refused with
 *   `UnsupportedVersion`: export again with this version.
 * - The file verifies on its own: `accountId` must be the hash of `rootPublicKey`, `certificate`
 *   must be a device certificate signed by that root for `signer` with `signPublicKey`. Importing
 *   into the same account also accepts a signer whose certificate is already in the registry.
 * - Verifying proves the file intact, not that its account is one to listen to: anyone can make
 *   an account. The importer decides whom it trusts (its own account, plus the accounts it names),
 *   and {@link admitForeignMemory} limits what a trusted *other* account's memory may claim
 *   (WIRE.md "Memory export", THREAT_MODEL.md "Someone who hands you a file").
 *
 * @module
 */
import { decodeEmbedding, encodeEmbedding, MEMORY_KINDS, type MemoryItem } from '../../crdt/memory.js'
import { reject, RejectCode, type Checked } from '../../crypto/codes.js'
import { accountKeysFromPublicKey, keyId, verifyCertificate } from '../../crypto/index.js'
import { signDetached, verifyDetached } from '../../crypto/primitives.js'
import type { DeviceCertificate } from '../../crypto/certificate.js'
import { bytesEqual, fromBase64Url, fromUtf8, toBase64Url, toHex, utf8 } from '../../util/bytes.js'
import { ValidationError } from '../../errors.js'
import { requireEmbedding, requireLabel } from '../check-json-args.js'
import { optionalNumber, requireId, requireObject, requireOneOf, requireTags, requireText } from '../check-args.js'

/** The `format` value of an export header. */
export const EXPORT_FORMAT = 'contextsync/memory-export'
/** Export format version written by this build. */
export const EXPORT_VERSION = 2
const HEADER_DOMAIN = 'contextsync/v1/memory-export-header'
const LINE_DOMAIN = 'contextsync/v1/memory-export'
/** Longest line accepted on import (a memory with a 4096-dim embedding fits easily). */
export const MAX_LINE_LENGTH = 1024 * 1024
/**
 * Deepest JSON nesting a line may have (the line object counts as level 1). Why: lines are
 * canonicalised recursively to check their signature, and a 1 MiB line can nest 500 000 levels —
 * enough to overflow the stack (found by the fuzz campaign). An export nests 3 levels; 64 is the
 * bound the inner docs' JSON has (WIRE.md "Inner doc of a scope").
 */
export const MAX_LINE_DEPTH = 64

/** The first line of an export. */
export interface ExportHeader {
  format: typeof EXPORT_FORMAT
  version: number
  accountId: string
  /** base64url of the account's Ed25519 root public key. */
  rootPublicKey: string
  /** Device id of the signer. */
  signer: string
  /** base64url of the signer's Ed25519 public key. */
  signPublicKey: string
  /** base64url of the signer's root-signed device certificate. */
  certificate: string
  scope: string
  exportedAt: number
  count: number
  /** Random id (base64url, 16 bytes) every memory line's signature is bound to. */
  exportId: string
  sig: string
}

/** A memory as exported: the item itself, with the embedding as base64url bytes. */
export type ExportedMemory = Omit<MemoryItem, 'embedding'> & { embedding?: string }

/** Who signs an export. */
export interface ExportSigner {
  accountId: string
  rootPublicKey: Uint8Array
  deviceId: string
  signPublicKey: Uint8Array
  signSecretKey: Uint8Array
  certificate: Uint8Array
}

/** JSON with keys sorted at every level and no whitespace. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/** A memory item in its exported JSON form. */
export function exportedMemory(item: MemoryItem): ExportedMemory {
  const out: ExportedMemory = {
    id: item.id,
    text: item.text,
    scope: item.scope,
    kind: item.kind,
    tags: [...item.tags],
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
    source: { ...item.source },
  }
  for (const key of ['confidence', 'validFrom', 'validTo', 'expiresAt', 'supersedes', 'supersededBy', 'embeddingModel'] as const) {
    const value = item[key]
    if (value !== undefined) (out as unknown as Record<string, unknown>)[key] = value
  }
  if (item.embedding) out.embedding = toBase64Url(encodeEmbedding(item.embedding))
  return out
}

/** The header line (with trailing newline). */
export function headerLine(signer: ExportSigner, scope: string, count: number, exportedAt: number, exportId: string): string {
  const header: Omit<ExportHeader, 'sig'> = {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    accountId: signer.accountId,
    rootPublicKey: toBase64Url(signer.rootPublicKey),
    signer: signer.deviceId,
    signPublicKey: toBase64Url(signer.signPublicKey),
    certificate: toBase64Url(signer.certificate),
    scope,
    exportedAt,
    count,
    exportId,
  }
  const sig = signDetached(HEADER_DOMAIN, utf8(canonicalJson(header)), signer.signSecretKey)
  return `${JSON.stringify({ ...header, sig: toBase64Url(sig) })}\n`
}

/** Which export a memory line belongs to, and its number `index` (1..count) in it. */
export interface LineBinding {
  exportId: string
  index: number
}

function lineMessage(accountId: string, memory: ExportedMemory, binding: LineBinding): Uint8Array {
  return utf8(`${accountId}\n${binding.exportId}\n${binding.index}\n${canonicalJson(memory)}`)
}

/** The k-th memory line of an export (with trailing newline). */
export function memoryLine(signer: ExportSigner, item: MemoryItem, binding: LineBinding): string {
  const memory = exportedMemory(item)
  const sig = signDetached(LINE_DOMAIN, lineMessage(signer.accountId, memory, binding), signer.signSecretKey)
  return `${JSON.stringify({ n: binding.index, memory, sig: toBase64Url(sig) })}\n`
}

/** A verified header: who signed, for which account. */
export interface TrustedSigner {
  accountId: string
  deviceId: string
  signPublicKey: Uint8Array
  /** The signer's role, from its registered certificate when the importer has one, else the file's. */
  role: DeviceCertificate['role']
  scope: string
  /** Memories the header promises. */
  count: number
  /** The id every memory line's signature is bound to. */
  exportId: string
}

/**
 * Parse and verify a header line. `registered` returns the certificate the importing device's
 * registry holds for a device of *its own* account (if any); otherwise the certificate in the
 * header must verify against the header's root key.
 */
export function verifyHeader(
  line: string,
  registered: (accountId: string, deviceId: string) => Pick<DeviceCertificate, 'signPublicKey' | 'role'> | undefined,
): Checked<TrustedSigner> {
  const parsed = parseJsonLine(line)
  if (!parsed.ok) return parsed
  const h = parsed.value
  if (h.format !== EXPORT_FORMAT) return reject(RejectCode.UnknownType, 'first line is not a contextsync memory export header')
  if (h.version !== EXPORT_VERSION) {
    // Not String(h.version): an object such as {"toString":1} throws when printed (found by the fuzz campaign).
    const shown = typeof h.version === 'number' || typeof h.version === 'string' ? String(h.version) : describeValue(h.version)
    return reject(RejectCode.UnsupportedVersion, `export version ${shown}`)
  }
  if (typeof h.exportId !== 'string' || h.exportId.length === 0 || h.exportId.length > 64) {
    return reject(RejectCode.Malformed, 'header field exportId missing')
  }
  const strings = ['accountId', 'rootPublicKey', 'signer', 'signPublicKey', 'certificate', 'scope', 'sig'] as const
  for (const key of strings) if (typeof h[key] !== 'string') return reject(RejectCode.Malformed, `header field ${key} missing`)
  if (typeof h.exportedAt !== 'number' || typeof h.count !== 'number' || !Number.isSafeInteger(h.count) || h.count < 0) {
    return reject(RejectCode.Malformed, 'header numbers missing')
  }
  const rootPublicKey = fromBase64Url(h.rootPublicKey as string)
  const signPublicKey = fromBase64Url(h.signPublicKey as string)
  const certificate = fromBase64Url(h.certificate as string)
  const sig = fromBase64Url(h.sig as string)
  if (!rootPublicKey || rootPublicKey.length !== 32 || !signPublicKey || signPublicKey.length !== 32 || !certificate || !sig) {
    return reject(RejectCode.Malformed, 'header keys are not valid base64url')
  }
  const accountId = h.accountId as string
  const deviceId = h.signer as string
  if (toHex(keyId(rootPublicKey)) !== accountId) return reject(RejectCode.WrongAccount, 'accountId is not the hash of rootPublicKey')
  const { sig: _sig, ...unsigned } = h
  if (!verifyDetached(HEADER_DOMAIN, utf8(canonicalJson(unsigned)), sig, signPublicKey)) {
    return reject(RejectCode.BadSignature, 'header signature does not verify')
  }
  const known = registered(accountId, deviceId)
  let role: DeviceCertificate['role']
  if (known) {
    if (!bytesEqual(known.signPublicKey, signPublicKey)) return reject(RejectCode.BadSignature, 'signer key differs from its registered certificate')
    role = known.role
  } else {
    const cert = verifyCertificate(accountKeysFromPublicKey(rootPublicKey), certificate)
    if (!cert.ok) return reject(cert.code === RejectCode.BadSignature ? RejectCode.UnknownSender : cert.code, `certificate: ${cert.reason}`)
    if (cert.value.deviceId !== deviceId || !bytesEqual(cert.value.signPublicKey, signPublicKey)) {
      return reject(RejectCode.UnknownSender, 'certificate does not name the signer')
    }
    role = cert.value.role
  }
  return { ok: true, value: { accountId, deviceId, signPublicKey, role, scope: h.scope as string, count: h.count, exportId: h.exportId } }
}

/** Account ids as `accountId` prints them: hex of a 16-byte hash, lowercase. */
const ACCOUNT_ID = /^[0-9a-f]{32}$/

/** True for a well-formed account id (32 lowercase hex characters). */
function isAccountId(value: unknown): value is string {
  return typeof value === 'string' && ACCOUNT_ID.test(value)
}

/** Throw `ValidationError` unless `value` is an account id. */
export function requireAccountId(value: unknown, name: string): string {
  if (!isAccountId(value)) throw new ValidationError(`${name} must be an account id (32 lowercase hex characters), got ${describeValue(value)}`)
  return value
}

/** Throw `ValidationError` unless `value` is undefined or an array of account ids. */
export function requireAccountIds(value: unknown, name: string): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new ValidationError(`${name} must be an array of account ids, got ${describeValue(value)}`)
  return value.map((id, i) => requireAccountId(id, `${name}[${i}]`))
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
  return Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value
}

/** What an import knows about the importing device's own account, to keep foreign files out of it. */
export interface ImportingAccount {
  accountId: string
  /** True when `deviceId` is this device or any device its registry certified (revoked ones too). */
  isOwnDevice(deviceId: string): boolean
  /** True when the registry lets device `deviceId` of this account hold `scope`. */
  holds(deviceId: string, scope: string): boolean
  /**
   * True when a memory with this id is on the device and is the account's own — not one this
   * import brings, nor one imported earlier from another account (its `source.accountId` names
   * that account), so a file split in parts or imported again still links its versions.
   */
  isOwnMemory(id: string): boolean
}

/**
 * What a verified memory of a trusted file may bring (`item.scope` is the scope the memory names):
 * from a member device of the importing account, only memories of scopes it is granted — its own
 * writes are limited so, and a file must not widen that; owners hold the root and can derive every
 * scope key, so their files are the account's word. From another account, what
 * {@link admitForeignMemory} lets through.
 */
export function admitMemory(item: MemoryItem, signer: TrustedSigner, own: ImportingAccount, allowInstructions: boolean): Checked<MemoryItem> {
  if (signer.accountId !== own.accountId) return admitForeignMemory(item, signer.accountId, own, allowInstructions)
  if (signer.role === 'member' && !own.holds(signer.deviceId, item.scope)) {
    return reject(
      RejectCode.NotGranted,
      `signer ${signer.deviceId} is a member device not granted scope '${item.scope}', so it cannot have exported this memory`,
    )
  }
  return { ok: true, value: item }
}

/**
 * The rules for a memory from a trusted file of *another* account (WIRE.md "Memory export",
 * what the signer may bring). It may bring facts, but not pass them off as the importing account's: stated provenance
 * is all a reader has (WIRE.md "Provenance is stated, not proven"), so the item is marked with the
 * account that wrote it, and a claim only the importing account could truthfully make is refused.
 *
 * - `source.accountId` is set to the file's account unless the memory already names a third
 *   account (the file's account imported it from there, and vouches for that by signing it).
 * - A memory naming the importing account, or one of its devices, as its source → `WrongAccount`:
 *   device ids are hashes of device keys, so no honest file of another account names one.
 * - `supersedes` / `supersededBy` naming a memory of the account's own → `WrongAccount`: that
 *   would make an injected item a version of the account's own (shown by `history`, deleted
 *   with it by `forget(id, { history: true })`).
 * - `kind: 'instruction'` → `NotGranted` unless `allowInstructions`: an instruction steers the
 *   assistant, so another account's are taken only when the caller asks for them by name.
 *
 * Returns the item to write (a copy), or why not.
 */
export function admitForeignMemory(
  item: MemoryItem,
  fileAccount: string,
  own: ImportingAccount,
  allowInstructions: boolean,
): Checked<MemoryItem> {
  const from = `the file is from account ${fileAccount}`
  if (item.source.accountId === own.accountId) {
    return reject(RejectCode.WrongAccount, `memory names this account (${own.accountId}) as its source, but ${from}`)
  }
  if (own.isOwnDevice(item.source.deviceId)) {
    return reject(RejectCode.WrongAccount, `memory names device ${item.source.deviceId} of this account as its source, but ${from}`)
  }
  for (const link of ['supersedes', 'supersededBy'] as const) {
    const target = item[link]
    if (target !== undefined && own.isOwnMemory(target)) {
      return reject(RejectCode.WrongAccount, `memory links (${link}) to memory ${target} of this account, but ${from}, which cannot add versions to it`)
    }
  }
  if (item.kind === 'instruction' && !allowInstructions) {
    return reject(
      RejectCode.NotGranted,
      `instruction memories of account ${fileAccount} import only with import(lines, { trust: ['${fileAccount}'], allowInstructions: true })`,
    )
  }
  return { ok: true, value: { ...item, source: { ...item.source, accountId: item.source.accountId ?? fileAccount } } }
}

/**
 * An authentic memory line: its number in the export, and the memory as an item — or, when the
 * signer signed fields no device may write, why not (`invalid`, refused with `BadPayload`).
 */
export type VerifiedLine = { index: number; item: MemoryItem } | { index: number; invalid: string }

/**
 * Parse and verify one memory line; returns its number `n` in the export and the memory as an item
 * (validated like `remember`, see {@link importedMemory}).
 */
export function verifyMemoryLine(line: string, signer: TrustedSigner): Checked<VerifiedLine> {
  const parsed = parseJsonLine(line)
  if (!parsed.ok) return parsed
  const { n: index, memory, sig } = parsed.value
  if (typeof memory !== 'object' || memory === null || Array.isArray(memory) || typeof sig !== 'string') {
    return reject(RejectCode.Malformed, 'line is not {"n":…,"memory":…,"sig":…}')
  }
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 1 || index > signer.count) {
    return reject(RejectCode.Malformed, `line number n must be 1..${signer.count}`)
  }
  const signature = fromBase64Url(sig)
  if (!signature) return reject(RejectCode.Malformed, 'sig is not base64url')
  const binding = { exportId: signer.exportId, index }
  if (!verifyDetached(LINE_DOMAIN, lineMessage(signer.accountId, memory as ExportedMemory, binding), signature, signer.signPublicKey)) {
    return reject(RejectCode.BadSignature, `line signature does not verify (as memory ${index} of this export)`)
  }
  const item = importedMemory(memory as Record<string, unknown>)
  return { ok: true, value: item.ok ? { index, item: item.value } : { index, invalid: item.reason } }
}

function parseJsonLine(line: string): Checked<Record<string, unknown>> {
  if (line.length > MAX_LINE_LENGTH) return reject(RejectCode.Malformed, 'line too long')
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return reject(RejectCode.Malformed, 'line is not JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return reject(RejectCode.Malformed, 'line is not a JSON object')
  if (nestsDeeperThan(value, MAX_LINE_DEPTH)) return reject(RejectCode.Malformed, `line nests JSON deeper than ${MAX_LINE_DEPTH} levels`)
  return { ok: true, value: value as Record<string, unknown> }
}

/** True when `value` nests arrays/objects more than `max` levels deep. Iterative: the input may nest deeper than the stack. */
function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<{ node: unknown; depth: number }> = [{ node: value, depth: 1 }]
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!
    if (depth > max) return true
    for (const child of Object.values(node as object)) {
      if (typeof child === 'object' && child !== null) stack.push({ node: child, depth: depth + 1 })
    }
  }
  return false
}

/**
 * A memory line's fields as an item, checked exactly as `remember` checks them (so an import can
 * bring in nothing a device could not have written), plus the stored-only fields.
 */
function importedMemory(m: Record<string, unknown>): Checked<MemoryItem> {
  try {
    if (typeof m.scope !== 'string' || m.scope.length === 0) throw new ValidationError('scope must be a non-empty string')
    const source = requireObject(m.source, 'source')
    const item: MemoryItem = {
      id: requireId(m.id, 'id'),
      text: requireText(m.text, 'text'),
      scope: m.scope,
      kind: requireOneOf(m.kind, MEMORY_KINDS, 'kind'),
      tags: requireTags(m.tags),
      createdAt: requireTime(m.createdAt, 'createdAt'),
      updatedAt: requireTime(m.updatedAt, 'updatedAt'),
      source: { deviceId: requireId(source.deviceId, 'source.deviceId') },
    }
    if (source.sessionId !== undefined) item.source.sessionId = requireId(source.sessionId, 'source.sessionId')
    if (source.turnId !== undefined) item.source.turnId = requireId(source.turnId, 'source.turnId')
    if (source.accountId !== undefined) item.source.accountId = requireAccountId(source.accountId, 'source.accountId')
    const confidence = optionalNumber(m.confidence, 'confidence', 0, 1)
    if (confidence !== undefined) item.confidence = confidence
    for (const key of ['validFrom', 'validTo', 'expiresAt'] as const) {
      const value = optionalNumber(m[key], key, 0)
      if (value !== undefined) item[key] = value
    }
    // No order check between validFrom and validTo: concurrent edits on two devices can merge into
    // an inverted window, which the device holds and exports; the file must restore what it held.
    for (const key of ['supersedes', 'supersededBy'] as const) if (m[key] !== undefined) item[key] = requireId(m[key], key)
    if (m.embeddingModel !== undefined) item.embeddingModel = requireLabel(m.embeddingModel, 'embeddingModel')
    if (m.embedding !== undefined) {
      const bytes = typeof m.embedding === 'string' ? fromBase64Url(m.embedding) : undefined
      const decoded = decodeEmbedding(bytes)
      if (!decoded) throw new ValidationError('embedding must be base64url little-endian float32 bytes')
      item.embedding = requireEmbedding(decoded)
    }
    return { ok: true, value: item }
  } catch (error) {
    if (error instanceof ValidationError) return reject(RejectCode.BadPayload, `memory fields are invalid: ${error.message}`)
    throw error
  }
}

function requireTime(value: unknown, name: string): number {
  const time = optionalNumber(value, name, 0)
  if (time === undefined) throw new ValidationError(`${name} is missing`)
  return time
}

/** What `memory.import` reads: a whole file, lines, or a stream of text/byte chunks. */
export type ImportSource = string | Uint8Array | Iterable<string> | AsyncIterable<string | Uint8Array>

/**
 * Lines of an import source. A string or bytes is a whole file; a synchronous iterable (e.g. an
 * array) yields one line per element; an async iterable is a stream of chunks split on newlines.
 */
export async function* readLines(source: ImportSource): AsyncGenerator<string> {
  if (typeof source === 'string' || source instanceof Uint8Array) {
    const text = typeof source === 'string' ? source : fromUtf8(source)
    for (const line of text.split('\n')) yield stripCr(line)
    return
  }
  if (typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    const decoder = new TextDecoder()
    let buffer = ''
    for await (const chunk of source as AsyncIterable<string | Uint8Array>) {
      buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true })
      let nl: number
      while ((nl = buffer.indexOf('\n')) >= 0) {
        yield stripCr(buffer.slice(0, nl))
        buffer = buffer.slice(nl + 1)
      }
      if (buffer.length > MAX_LINE_LENGTH) {
        // A line this long is rejected anyway; keep memory bounded.
        yield buffer
        buffer = ''
      }
    }
    buffer += decoder.decode()
    if (buffer.length > 0) yield stripCr(buffer)
    return
  }
  for (const line of source as Iterable<string>) {
    const text = String(line)
    for (const part of (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n')) yield stripCr(part)
  }
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line
}
