/**
 * Relay access tokens (WIRE.md "Relay access token") through `verifyAccessToken`
 * (src/crypto/token.ts): never throws; refusals are 1, 2, 4–7, 12, 13 with a reason.
 *
 * Input layout: `u8 form · payload`. Form 0: the payload is the token's bytes, sent as unpadded
 * base64url (mutated tokens, tokens whose signed part was mutated and signed again with the
 * device key, tokens around a mutated relay pass signed again by the root). Form 1: the payload
 * is the token *text* itself (UTF-8), to reach the base64url decoder and the 4096-character bound.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import { createAccessToken, signStatement, StatementType, verifyAccessToken } from '../../../src/crypto/index.js'
import { signDetached } from '../../../src/crypto/primitives.js'
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from '../../../src/util/bytes.js'
import { fixture, FUZZ_NOW } from '../fixture.js'
import { mutate, randomInput } from '../mutators.js'
import { chance, int, pick, weighted } from '../rng.js'
import { checkedOutcome, expectThat, type Target } from '../target.js'

const TOKEN_DOMAIN = 'contextsync/v1/relay-token'

function framed(form: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1)
  out[0] = form
  out.set(payload, 1)
  return out
}

export const tokenTarget: Target = {
  name: 'token',
  description: 'verifyAccessToken on binary and text tokens (src/crypto/token.ts)',
  weight: 8,
  async setup(seed) {
    const fx = fixture(seed)
    const location = fx.keyring.roomId('location')
    const health = fx.keyring.roomId('health')
    const make = (member: boolean, roomId: string, lifetimeSeconds?: number) =>
      fromBase64Url(
        createAccessToken({
          rootPublicKey: fx.account.rootPublicKey,
          relayPass: member ? fx.memberPass : fx.ownerPass,
          device: member ? fx.member : fx.device,
          roomId,
          now: FUZZ_NOW,
          ...(lifetimeSeconds !== undefined && { lifetimeSeconds }),
        }),
      )!
    const samples = [make(false, fx.roomId), make(true, fx.roomId), make(true, location), make(false, health, 3600)]
    const passBody = (pass: Uint8Array): Uint8Array => {
      const dec = decoding.createDecoder(pass)
      decoding.readUint8(dec)
      decoding.readUint8(dec)
      return decoding.readVarUint8Array(dec).slice()
    }
    const passBodies = [passBody(fx.ownerPass), passBody(fx.memberPass)]
    const sign = (unsigned: Uint8Array, member: boolean): Uint8Array => {
      const signature = signDetached(TOKEN_DOMAIN, unsigned, (member ? fx.member : fx.device).signSecretKey)
      const out = new Uint8Array(unsigned.length + 64)
      out.set(unsigned)
      out.set(signature, unsigned.length)
      return out
    }
    return {
      generate(gen) {
        return weighted<() => Uint8Array>(gen, [
          [4, () => framed(0, mutate(gen, pick(gen, samples), samples))],
          [4, () => framed(0, sign(mutate(gen, pick(gen, samples).subarray(0, -64), samples), chance(gen, 0.5)))],
          [
            2,
            () => {
              // A mutated pass body signed by the root, inside a token signed by the device.
              const member = chance(gen, 0.5)
              const pass = signStatement(fx.account, chance(gen, 0.95) ? StatementType.RelayPass : (int(gen, 0, 12) as StatementType), mutate(gen, pick(gen, passBodies), passBodies))
              const token = fromBase64Url(createAccessToken({ rootPublicKey: fx.account.rootPublicKey, relayPass: pass, device: member ? fx.member : fx.device, roomId: fx.roomId, now: FUZZ_NOW }))!
              return framed(0, token)
            },
          ],
          [2, () => framed(1, mutate(gen, utf8(toBase64Url(pick(gen, samples)))))],
          [1, () => framed(int(gen, 0, 1), randomInput(gen, [1]))],
        ])()
      },
      run(input) {
        const form = input[0] ?? 0
        const token = form === 1 ? fromUtf8(input.subarray(1)) : toBase64Url(input.subarray(1))
        const roomId = token.length % 7 === 0 ? location : fx.roomId
        const result = verifyAccessToken(token, { roomId, now: FUZZ_NOW })
        const label = checkedOutcome(result, 'verifyAccessToken')
        if (result.ok) {
          expectThat(result.value.roomId === roomId && /^[0-9a-f]{32}$/.test(result.value.nonce), 'accepted token with odd grant fields')
          expectThat(result.value.accountId === fx.account.accountId, 'accepted a token of another account')
        }
        return `form ${form} ${label}`
      },
    }
  },
}
