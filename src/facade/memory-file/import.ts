/**
 * `memory.import`: a signed JSONL export (format in `format.ts`) read line by line, each line
 * verified against the signer its header names and admitted by the trust rules of `format.ts`,
 * then written in batches. A line that fails is refused with a `RejectCode` and reported (and
 * counted like any refused input); the rest still import. Idempotent: memories already here are
 * skipped.
 *
 * @module
 */
import { insertMemory, type MemoryItem } from '../../crdt/memory.js'
import { RejectCode, type RejectCode as RejectCodeType } from '../../crypto/codes.js'
import { ContextSyncError, ValidationError } from '../../errors.js'
import type { Replica } from '../../sync/replica.js'
import type { DeviceContext } from '../device-context.js'
import { isExpired } from '../memory-input.js'
import type { ImportOptions, ImportReport } from '../memory-types.js'
import { requireObject } from '../check-args.js'
import {
  admitMemory,
  readLines,
  requireAccountId,
  requireAccountIds,
  verifyHeader,
  verifyMemoryLine,
  type ImportingAccount,
  type ImportSource,
  type TrustedSigner,
} from './format.js'

const IMPORT_BATCH = 256

/** What an import needs of the memory API it runs in. */
export interface ImportHost {
  /** The device the import writes into. */
  readonly context: DeviceContext
  /** The item with this id on this device (superseded versions included), with its replica. */
  locate(id: string): { replica: Replica; item: MemoryItem } | undefined
}

/** Import `source` into the device `host` runs on; see `MemoryApi.import`. */
export async function importMemories(host: ImportHost, source: ImportSource, options: ImportOptions = {}): Promise<ImportReport> {
  host.context.assertOpen()
  if (source === null || source === undefined || (typeof source !== 'string' && typeof source !== 'object')) {
    throw new ValidationError('import(source) takes a string, bytes, an iterable of lines or an async iterable of chunks')
  }
  const opts = requireObject(options, 'import(source, options)')
  const identity = host.context
  const targetScope = opts.scope === undefined ? undefined : host.context.replica(opts.scope).scope
  const expectAccount = opts.accountId === undefined ? undefined : requireAccountId(opts.accountId, 'accountId')
  const trusted = new Set(requireAccountIds(opts.trust, 'trust'))
  if (opts.allowInstructions !== undefined && typeof opts.allowInstructions !== 'boolean') {
    throw new ValidationError('options.allowInstructions must be a boolean')
  }
  const allowInstructions = opts.allowInstructions === true
  const report: ImportReport = { imported: 0, skipped: 0, rejected: [] }
  const registry = identity.registry
  const ownAccount = identity.account.accountId
  trusted.add(ownAccount)
  const seenIds = new Set<string>()
  const importing: ImportingAccount = {
    accountId: ownAccount,
    isOwnDevice: (deviceId) => deviceId === host.context.deviceId || registry.certificate(deviceId) !== undefined || registry.revocation(deviceId) !== undefined,
    holds: (deviceId, scope) => registry.holds(deviceId, scope),
    // Items of this file are locatable once a batch is written; those, and items an earlier
    // import brought from another account, are not the account's own.
    isOwnMemory: (id) => {
      if (seenIds.has(id)) return false
      const held = host.locate(id)?.item
      return held !== undefined && (held.source.accountId === undefined || held.source.accountId === ownAccount)
    },
  }
  let signer: TrustedSigner | undefined
  let headerFailure: { code: RejectCodeType; reason: string } | undefined
  const pending = new Map<Replica, MemoryItem[]>()
  const touched = new Set<Replica>()
  const flush = (): void => {
    for (const [replica, items] of pending) {
      replica.inner.transact(() => {
        for (const item of items) insertMemory(replica.inner, item)
      })
      touched.add(replica)
    }
    pending.clear()
  }
  let pendingCount = 0
  let lineNo = 0
  /** Numbers (`n`) of the authentic memory lines read, to report the missing ones. */
  const numbers = new Set<number>()
  const refuse = (code: RejectCodeType, reason: string, scope = targetScope ?? ''): void => {
    report.rejected.push({ line: lineNo, code, reason })
    // Counted and reported like any refused input (`dev.rejectionCounts()`, `dev.on('rejected')`).
    identity.reportRejection({
      code,
      reason: `import: ${reason}`,
      scope,
      roomId: '',
      source: 'import',
      line: lineNo,
      ...(signer !== undefined && { senderId: signer.deviceId }),
    })
  }
  const now = Date.now()
  for await (const line of readLines(source)) {
    lineNo++
    if (line.trim().length === 0) continue
    if (!signer && !headerFailure) {
      const header = verifyHeader(line, (accountId, deviceId) =>
        accountId === ownAccount ? registry.certificate(deviceId) : undefined,
      )
      if (!header.ok) headerFailure = { code: header.code, reason: `header: ${header.reason}` }
      else {
        const { accountId, deviceId } = header.value
        // The header verified: who sent it is known, even when it is refused.
        report.accountId = accountId
        report.signer = deviceId
        if (accountId === ownAccount && registry.revocation(deviceId)) {
          // Its key may be in other hands now, and `exportedAt` is its own claim: refuse it whole.
          headerFailure = { code: RejectCode.RevokedSender, reason: `header: signed by revoked device ${deviceId}` }
        } else if (expectAccount !== undefined && accountId !== expectAccount) {
          headerFailure = { code: RejectCode.WrongAccount, reason: `file is from account ${accountId}, not ${expectAccount}` }
        } else if (expectAccount === undefined && !trusted.has(accountId)) {
          // Anyone can make an account and sign a file with it: verifying proves the file
          // intact, not that its account is one to listen to (THREAT_MODEL.md "Someone who
          // hands you a file").
          headerFailure = {
            code: RejectCode.WrongAccount,
            reason: `file is from account ${accountId}, which is not trusted: an import trusts this device's own account and the accounts named in options.trust; to import it, pass import(lines, { trust: ['${accountId}'] })`,
          }
        } else {
          signer = header.value
          continue
        }
      }
      refuse(headerFailure.code, headerFailure.reason)
      continue
    }
    if (!signer) {
      refuse(headerFailure!.code, 'no trusted header')
      continue
    }
    const verified = verifyMemoryLine(line, signer)
    if (!verified.ok) {
      refuse(verified.code, verified.reason)
      continue
    }
    numbers.add(verified.value.index)
    if ('invalid' in verified.value) {
      refuse(RejectCode.BadPayload, verified.value.invalid)
      continue
    }
    const item = verified.value.item
    let replica: Replica
    try {
      replica = host.context.replica(targetScope ?? item.scope)
    } catch (error) {
      if (!(error instanceof ContextSyncError)) throw error
      refuse(RejectCode.NotGranted, `this device does not hold scope '${targetScope ?? item.scope}'`, targetScope ?? item.scope)
      continue
    }
    if (seenIds.has(item.id) || host.locate(item.id) || isExpired(item, now)) {
      // Before the rules below: nothing is written, and a file that went to another account
      // and came back skips the memories that were this account's instead of refusing them.
      report.skipped++
      continue
    }
    const admitted = admitMemory(item, signer, importing, allowInstructions)
    if (!admitted.ok) {
      refuse(admitted.code, admitted.reason, replica.scope)
      continue
    }
    const accepted = admitted.value
    seenIds.add(accepted.id)
    accepted.scope = replica.scope
    let list = pending.get(replica)
    if (!list) pending.set(replica, (list = []))
    list.push(accepted)
    report.imported++
    if (++pendingCount >= IMPORT_BATCH) {
      flush()
      pendingCount = 0
      host.context.assertOpen()
    }
  }
  flush()
  if (signer && numbers.size < signer.count) {
    // One refusal after the last line for the memories the signed header promises but no
    // authentic line delivered (cut off, lost, or garbled lines).
    const missing: number[] = []
    for (let n = 1; n <= signer.count && missing.length < 20; n++) if (!numbers.has(n)) missing.push(n)
    const more = signer.count - numbers.size - missing.length
    lineNo++
    refuse(
      RejectCode.Malformed,
      `export incomplete: ${signer.count - numbers.size} of its ${signer.count} memories missing (n = ${missing.join(', ')}${more > 0 ? `, and ${more} more` : ''})`,
    )
  }
  await Promise.all([...touched].map((r) => r.whenFlushed()))
  return report
}
