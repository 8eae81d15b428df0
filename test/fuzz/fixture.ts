/**
 * The keys of a fuzz campaign, derived from its seed (so every worker and a replay hold the same
 * ones, and an input re-signed in one worker verifies in another): an account root, an owner
 * device that signs envelopes, a second certified device, and a device the fixture treats as
 * revoked. Plus the personal room and its epoch-0 key, as an owner derives them.
 *
 * @module
 */
import {
  accountKeysFromSeed,
  deviceKeysFromSeeds,
  issueCertificate,
  issueRelayPass,
  ownerKeyring,
  type AccountKeys,
  type DeviceKeyring,
  type DeviceKeys,
} from '../../src/crypto/index.js'
import { seededBytes } from './rng.js'

/** Fixed clock of a campaign (ms): tokens and certificates are made and checked against it. */
export const FUZZ_NOW = 1_800_000_000_000

/** Everything a target needs to make genuine samples and to verify them. */
export interface Fixture {
  seed: number
  account: AccountKeys
  keyring: DeviceKeyring
  /** The device whose envelopes, tokens and exports the samples are. */
  device: DeviceKeys
  /** A second certified device (a member with a room list in its pass). */
  member: DeviceKeys
  /** A device the receivers treat as revoked. */
  revoked: DeviceKeys
  certificate: Uint8Array
  memberCertificate: Uint8Array
  ownerPass: Uint8Array
  memberPass: Uint8Array
  roomId: string
  /** Epoch 0 key of {@link roomId}. */
  key: Uint8Array
  /** A key of no epoch, for a second "concurrent start" key that never opens anything. */
  otherKey: Uint8Array
  /** This device's at-rest key (checkpoints). */
  atRestKey: Uint8Array
}

const cache = new Map<number, Fixture>()

/** The fixture of `seed` (built once per worker). Call after `ready()`. */
export function fixture(seed: number): Fixture {
  const cached = cache.get(seed)
  if (cached) return cached
  const account = accountKeysFromSeed(seededBytes(seed, 'account'))
  const device = deviceKeysFromSeeds(seededBytes(seed, 'device/sign'), seededBytes(seed, 'device/box'))
  const member = deviceKeysFromSeeds(seededBytes(seed, 'member/sign'), seededBytes(seed, 'member/box'))
  const revoked = deviceKeysFromSeeds(seededBytes(seed, 'revoked/sign'), seededBytes(seed, 'revoked/box'))
  const keyring = ownerKeyring(account)
  const roomId = keyring.roomId('personal')
  const key = keyring.epochKey('personal', 0)
  if (!key) throw new Error('an owner keyring derives epoch 0 of personal')
  const built: Fixture = {
    seed,
    account,
    keyring,
    device,
    member,
    revoked,
    certificate: issueCertificate(account, device, { kind: 'phone', name: 'Fuzz phone', role: 'owner', issuedAt: FUZZ_NOW - 1000 }),
    memberCertificate: issueCertificate(account, member, { kind: 'car', name: 'Fuzz car', role: 'member', issuedAt: FUZZ_NOW - 1000 }),
    ownerPass: issueRelayPass(account, device, { rooms: 'all', issuedAt: FUZZ_NOW - 1000 }),
    memberPass: issueRelayPass(account, member, { rooms: [roomId, keyring.roomId('location')], issuedAt: FUZZ_NOW - 1000 }),
    roomId,
    key,
    otherKey: seededBytes(seed, 'other-key'),
    atRestKey: seededBytes(seed, 'at-rest'),
  }
  cache.set(seed, built)
  return built
}
