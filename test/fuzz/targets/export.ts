/**
 * Memory export lines (WIRE.md "Memory export") through `verifyHeader`, `verifyMemoryLine` and
 * `admitMemory` (src/facade/memory-file/format.ts): none may throw; every refusal carries a RejectCode.
 *
 * Input layout: `u8 form · UTF-8 line`; form 0 is a header line, form 1 a memory line of the
 * genuine export's header. Lines are mutated as text, as JSON structure (fields retyped, removed,
 * grown, nested deep), and as JSON structure signed again with the exporting device's key, so the
 * mutated fields reach the checks behind the signature.
 *
 * @module
 */
import { signDetached } from '../../../src/crypto/primitives.js'
import {
  admitMemory,
  canonicalJson,
  headerLine,
  memoryLine,
  verifyHeader,
  verifyMemoryLine,
  type ExportSigner,
  type ImportingAccount,
  type TrustedSigner,
} from '../../../src/facade/memory-file/format.js'
import { fromUtf8, toBase64Url, utf8 } from '../../../src/util/bytes.js'
import { fixture, FUZZ_NOW, type Fixture } from '../fixture.js'
import { mutateJson, mutateJsonText, toText } from '../json-mutators.js'
import { mutate, randomInput } from '../mutators.js'
import { chance, pick, setupRng, weighted, type Rng } from '../rng.js'
import { checkedOutcome, expectThat, type Target } from '../target.js'
import { sampleMemory } from './crafted.js'

const HEADER_DOMAIN = 'contextsync/v1/memory-export-header'
const LINE_DOMAIN = 'contextsync/v1/memory-export'
const EXPORT_ID = 'ZnV6ei1leHBvcnQtaWQtMQ'

/** A genuine export of a few memories, signed by the fixture's owner device. */
export function genuineExport(gen: Rng, fx: Fixture): { signer: ExportSigner; header: string; lines: string[] } {
  const signer: ExportSigner = {
    accountId: fx.account.accountId,
    rootPublicKey: fx.account.rootPublicKey,
    deviceId: fx.device.deviceId,
    signPublicKey: fx.device.signPublicKey,
    signSecretKey: fx.device.signSecretKey,
    certificate: fx.certificate,
  }
  const items = Array.from({ length: 5 }, (_, i) => sampleMemory(gen, i, fx.device.deviceId))
  return {
    signer,
    header: headerLine(signer, 'personal', items.length, FUZZ_NOW, EXPORT_ID).trimEnd(),
    lines: items.map((item, i) => memoryLine(signer, item, { exportId: EXPORT_ID, index: i + 1 }).trimEnd()),
  }
}

/** Sign a (mutated) line again as the exporting device; left as it is when it cannot be canonicalised. */
function resigned(signer: ExportSigner, value: unknown, header: boolean): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value
  const record = value as Record<string, unknown>
  try {
    if (header) {
      const { sig: _sig, ...unsigned } = record
      return { ...record, sig: toBase64Url(signDetached(HEADER_DOMAIN, utf8(canonicalJson(unsigned)), signer.signSecretKey)) }
    }
    const message = `${signer.accountId}\n${EXPORT_ID}\n${String(record.n)}\n${canonicalJson(record.memory)}`
    return { ...record, sig: toBase64Url(signDetached(LINE_DOMAIN, utf8(message), signer.signSecretKey)) }
  } catch {
    return value
  }
}

/** One mutated line of a genuine export. */
export function mutatedLine(gen: Rng, signer: ExportSigner, line: string, header: boolean): string {
  return weighted<() => string>(gen, [
    [3, () => fromUtf8(mutate(gen, utf8(line)))],
    [1, () => mutateJsonText(gen, line)],
    [3, () => toText(gen, mutateJson(gen, JSON.parse(line)))],
    [5, () => toText(gen, resigned(signer, mutateJson(gen, JSON.parse(line)), header) as never)],
    [1, () => fromUtf8(randomInput(gen, [0x7b]))],
  ])()
}

export const exportTarget: Target = {
  name: 'export',
  description: 'verifyHeader / verifyMemoryLine / admitMemory on memory export lines (src/facade/memory-file/format.ts)',
  weight: 8,
  async setup(seed) {
    const fx = fixture(seed)
    const { signer, header, lines } = genuineExport(setupRng(seed, 'export'), fx)
    const registered = (accountId: string, deviceId: string) =>
      accountId === fx.account.accountId && deviceId === fx.device.deviceId ? { signPublicKey: fx.device.signPublicKey, role: 'owner' as const } : undefined
    const verified = verifyHeader(header, registered)
    if (!verified.ok) throw new Error(`the genuine export header does not verify: ${verified.reason}`)
    const trusted: TrustedSigner = verified.value
    const foreign: TrustedSigner = { ...trusted, accountId: 'f'.repeat(32) }
    const own: ImportingAccount = {
      accountId: fx.account.accountId,
      isOwnDevice: (id) => id === fx.device.deviceId || id === fx.member.deviceId,
      holds: (id, scope) => id === fx.device.deviceId || scope === 'personal',
      isOwnMemory: (id) => id.startsWith('m1'),
    }
    return {
      generate(gen) {
        const isHeader = chance(gen, 0.35)
        const line = mutatedLine(gen, signer, isHeader ? header : pick(gen, lines), isHeader)
        const body = utf8(line)
        const out = new Uint8Array(body.length + 1)
        out[0] = isHeader ? 0 : 1
        out.set(body, 1)
        return out
      },
      run(input) {
        const line = fromUtf8(input.subarray(1))
        if (input[0] === 0) {
          // Half the headers are checked against the registry, half against their own certificate.
          const result = verifyHeader(line, line.length % 2 === 0 ? registered : () => undefined)
          return `header ${checkedOutcome(result, 'verifyHeader')}`
        }
        const result = verifyMemoryLine(line, trusted)
        const label = `line ${checkedOutcome(result, 'verifyMemoryLine')}`
        if (!result.ok) return label
        if ('invalid' in result.value) {
          expectThat(typeof result.value.invalid === 'string' && result.value.invalid.length > 0, 'invalid line without a reason')
          return `${label} invalid`
        }
        const item = result.value.item
        expectThat(typeof item.id === 'string' && typeof item.text === 'string' && Array.isArray(item.tags), 'accepted a line with ill-typed fields')
        checkedOutcome(admitMemory(item, trusted, own, false), 'admitMemory (own account)')
        return `${label} ${checkedOutcome(admitMemory(item, foreign, own, line.length % 2 === 0), 'admitMemory (another account)')}`
      },
    }
  },
}
