/**
 * Relay frames (y-websocket sync and awareness messages) through `parseClientMessage`
 * (src/relay/protocol.ts): never throws; a frame is accepted whole or refused (the relay closes
 * with 4400 MalformedFrame). Samples are genuine frames: sync step 1 / step 2 / update messages
 * carrying sealed-log updates with real envelopes, awareness updates carrying sealed presence.
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import { CloseCode } from '../../../src/wire/close-codes.js'
import { parseClientMessage } from '../../../src/relay/protocol.js'
import { sealPresence } from '../../../src/sync/presence.js'
import { fixture, type Fixture } from '../fixture.js'
import { mutate, randomInput } from '../mutators.js'
import { int, pick, setupRng, weighted, type Rng } from '../rng.js'
import { expectThat, type Target } from '../target.js'
import { envelopeSamples } from './envelopes.js'

function frame(write: (enc: encoding.Encoder) => void): Uint8Array {
  const enc = encoding.createEncoder()
  write(enc)
  return encoding.toUint8Array(enc)
}

/** Genuine client frames of every kind the relay accepts. */
export function frameSamples(gen: Rng, fx: Fixture): Uint8Array[] {
  const envelopes = envelopeSamples(gen, fx).map((s) => s.bytes)
  const doc = new Y.Doc()
  doc.clientID = 777
  const updates: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => updates.push(u))
  const log = doc.getArray<Uint8Array>('log')
  for (const e of envelopes.slice(0, 4)) log.push([e])
  log.delete(0, 1)
  const out: Uint8Array[] = []
  for (const u of updates) {
    out.push(frame((enc) => (encoding.writeVarUint(enc, 0), syncProtocol.writeUpdate(enc, u))))
  }
  out.push(frame((enc) => (encoding.writeVarUint(enc, 0), syncProtocol.writeSyncStep1(enc, doc))))
  out.push(frame((enc) => (encoding.writeVarUint(enc, 0), syncProtocol.writeSyncStep2(enc, doc))))
  const state = sealPresence({ roomId: fx.roomId, epoch: 0, key: fx.key, sender: fx.device.deviceIdBytes, signSecretKey: fx.device.signSecretKey, seq: 1_800_000_000_000, payload: { at: 1 } })
  for (const json of [JSON.stringify(state), 'null', '{"e":"AAAA"}']) {
    const inner = frame((enc) => {
      encoding.writeVarUint(enc, 1)
      encoding.writeVarUint(enc, int(gen, 1, 2 ** 31))
      encoding.writeVarUint(enc, int(gen, 0, 100))
      encoding.writeVarString(enc, json)
    })
    out.push(frame((enc) => (encoding.writeVarUint(enc, 1), encoding.writeVarUint8Array(enc, inner))))
  }
  out.push(Uint8Array.of(3))
  doc.destroy()
  return out
}

/** One frame input: a mutated genuine frame, mostly; sometimes random bytes led by a message type. */
export function generateFrame(gen: Rng, samples: readonly Uint8Array[]): Uint8Array {
  return weighted<() => Uint8Array>(gen, [
    [8, () => mutate(gen, pick(gen, samples), samples)],
    [1, () => pick(gen, samples)],
    [2, () => randomInput(gen, [0, 1, 2, 3])],
  ])()
}

export const framesTarget: Target = {
  name: 'frames',
  description: 'parseClientMessage on y-websocket sync and awareness frames (src/relay/protocol.ts)',
  weight: 10,
  async setup(seed) {
    const samples = frameSamples(setupRng(seed, 'frames'), fixture(seed))
    return {
      generate: (gen) => generateFrame(gen, samples),
      run(input) {
        const message = parseClientMessage(input)
        if (message === undefined) return `refused ${CloseCode.MalformedFrame} MalformedFrame`
        expectThat(['sync-step1', 'sync-step2', 'sync-update', 'awareness', 'query-awareness'].includes(message.type), `parsed an unknown message type ${message.type}`)
        return `accepted ${message.type}`
      },
    }
  },
}
