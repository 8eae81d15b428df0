import { afterEach, describe, expect, it, vi } from 'vitest'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { Awareness } from 'y-protocols/awareness'
import { RejectCode, type ContextSync } from '../../src/index.js'
import type { PresenceChange } from '../../src/facade/presence.js'
import { fromBase64Url, toBase64Url } from '../../src/util/bytes.js'
import { decodePresence, encodePresence, PresenceSeqs } from '../../src/sync/presence.js'
import { converge } from '../helpers/devices.js'
import { loopbackDevices } from '../helpers/loopback-devices.js'

afterEach(() => {
  vi.useRealTimers()
})

/** Devices of one account on a loopback network (the shared fixture closes them when the test ends). */
function start(kinds: Array<'phone' | 'glasses' | 'car' | 'pc'>, seed: number) {
  return loopbackDevices(kinds, { seed })
}

/** The awareness states carried by one y-websocket awareness frame: [clientID, JSON state]. */
function awarenessStates(frame: Uint8Array): Array<[number, unknown]> {
  const dec = decoding.createDecoder(frame)
  expect(decoding.readVarUint(dec)).toBe(1) // messageAwareness
  const update = decoding.createDecoder(decoding.readVarUint8Array(dec))
  const out: Array<[number, unknown]> = []
  const n = decoding.readVarUint(update)
  for (let i = 0; i < n; i++) {
    const client = decoding.readVarUint(update)
    decoding.readVarUint(update) // clock
    out.push([client, JSON.parse(decoding.readVarString(update)) as unknown])
  }
  return out
}

function view(dev: ContextSync, other: ContextSync) {
  const e = dev.presence.list().find((x) => x.deviceId === other.deviceId)
  return e && { online: e.online, kind: e.kind, name: e.name, activity: e.activity, activeSessionId: e.activeSessionId }
}

describe('presence', () => {
  it('shows devices coming and going, with kind, name, activity and active session', async () => {
    const { devs, net, open } = await start(['phone', 'car'], 71)
    const [phone, car] = devs.map((d) => d.dev) as [ContextSync, ContextSync]
    const changes: PresenceChange[] = []
    phone.presence.on('change', (e) => changes.push(e))

    expect(phone.presence.list()[0]).toMatchObject({ deviceId: phone.deviceId, self: true, online: true, kind: 'phone' })
    expect(view(phone, car)).toEqual({ online: true, kind: 'car', name: 'Test car', activity: undefined, activeSessionId: undefined })

    const s = car.sessions.start({ title: 'Commute' })
    car.presence.set({ activity: 'driving', activeSessionId: s.id })
    await net.settle()
    expect(view(phone, car)).toEqual({ online: true, kind: 'car', name: 'Test car', activity: 'driving', activeSessionId: s.id })
    expect(changes.at(-1)).toMatchObject({ deviceId: car.deviceId, entry: { activity: 'driving', online: true } })
    expect(car.presence.get(car.deviceId)).toMatchObject({ self: true, activity: 'driving', activeSessionId: s.id })

    // A device comes…
    const glasses = (await open('glasses')).dev
    await converge([phone, car, glasses], net)
    glasses.presence.set({ activity: 'walking' })
    await net.settle()
    expect(view(phone, glasses)).toMatchObject({ online: true, kind: 'glasses', activity: 'walking' })
    expect(view(glasses, car)).toMatchObject({ online: true, activity: 'driving', activeSessionId: s.id })

    // …a field is cleared…
    car.presence.set({ activeSessionId: null })
    await net.settle()
    expect(view(phone, car)).toMatchObject({ activity: 'driving', activeSessionId: undefined })

    // …and a device goes: closing removes its awareness state, offline at once.
    const before = changes.length
    await car.close()
    await net.settle()
    expect(view(phone, car)).toEqual({ online: false, kind: 'car', name: 'Test car', activity: undefined, activeSessionId: undefined })
    expect(view(glasses, car)?.online).toBe(false)
    expect(changes.slice(before)).toEqual([expect.objectContaining({ deviceId: car.deviceId, entry: expect.objectContaining({ online: false }) })])
    expect(phone.rejectionCounts()).toEqual({})
  })

  it('puts no plaintext presence on the wire: awareness states are only { e: <sealed envelope> }', async () => {
    const { devs, net } = await start(['phone', 'car', 'glasses'], 72)
    const [phone, car, glasses] = devs.map((d) => d.dev) as [ContextSync, ContextSync, ContextSync]
    const frames: Uint8Array[] = []
    const everything: Buffer[] = []
    net.on('message', (m) => {
      everything.push(Buffer.from(m.bytes))
      if (m.type === 'awareness') frames.push(m.bytes)
    })
    const marker = 'MARKER-activity-9c1e'
    const session = car.sessions.start({ title: 'MARKER-title-presence' })
    car.presence.set({ activity: marker, activeSessionId: session.id })
    glasses.presence.set({ activity: 'walking' })
    await net.settle()
    expect(view(phone, car)?.activity).toBe(marker) // it did travel

    expect(frames.length).toBeGreaterThan(2)
    let sealed = 0
    for (const frame of frames) {
      for (const [, state] of awarenessStates(frame)) {
        if (state === null) continue
        expect(Object.keys(state as object)).toEqual(['e'])
        const envelope = fromBase64Url((state as { e: string }).e)!
        expect(envelope[0]).toBe(1) // envelope version
        expect(envelope[1]).toBe(3) // type presence
        sealed++
      }
    }
    expect(sealed).toBeGreaterThan(2)
    const wire = Buffer.concat(everything)
    for (const plaintext of [marker, 'walking', session.id, 'Test car', 'Test glasses', '"car"', 'activity']) {
      expect(wire.includes(plaintext), plaintext).toBe(false)
    }
  })

  it('refuses forged and plaintext seq announcements in another scope’s room with codes (source presence)', async () => {
    const { devs, net } = await start(['phone', 'pc'], 74)
    const [phone, pc] = devs.map((d) => d.dev) as [ContextSync, ContextSync]
    await pc.memory.remember({ text: 'work item', scope: 'work' })
    await converge([phone, pc], net)
    const doc = new Y.Doc()
    const evil = new Awareness(doc)
    evil.setLocalState(null)
    net.transport({ name: 'evil' }).attach({ roomId: phone.roomId('work'), doc, awareness: evil })
    const rejected: Array<[string | undefined, string, number]> = []
    phone.on('rejected', (e) => rejected.push([e.source, e.scope, e.code]))
    for (const state of [{ logSeq: 999_999 }, { e: 'not base64 !!' }]) {
      evil.setLocalState(state as Record<string, unknown>)
      await net.settle()
    }
    evil.destroy()
    await net.settle()
    expect(rejected).toEqual([
      ['presence', 'work', RejectCode.Malformed],
      ['presence', 'work', RejectCode.Malformed],
    ])
    // Nothing was believed: the pc's genuine announcement is the only one the phone tracks.
    expect(phone.syncStatus().filter((s) => s.scope === 'work')).toEqual([expect.objectContaining({ deviceId: pc.deviceId, caughtUp: true })])
  })

  it('refuses forged, tampered and plaintext presence with codes, ignores replayed older presence, and never shows either', async () => {
    const { devs, net } = await start(['phone', 'car'], 73)
    const [phone, car] = devs.map((d) => d.dev) as [ContextSync, ContextSync]
    const phoneAwareness = phone.replica('personal')!.awareness
    const carClient = car.replica('personal')!.awareness.clientID
    const captured = phoneAwareness.getStates().get(carClient) as { e: string }
    expect(captured.e).toBeTypeOf('string')
    car.presence.set({ activity: 'driving' })
    await net.settle()

    // An attacker on the relay path: a raw awareness client in the personal room.
    const doc = new Y.Doc()
    const evil = new Awareness(doc)
    evil.setLocalState(null)
    net.transport({ name: 'evil' }).attach({ roomId: phone.roomId('personal'), doc, awareness: evil })
    const rejected: number[] = []
    phone.on('rejected', (e) => rejected.push(e.code))
    const send = async (state: unknown) => {
      evil.setLocalState(state as Record<string, unknown>)
      await net.settle()
    }
    await send({ activity: 'parked', deviceId: car.deviceId }) // plaintext
    await send({ e: 'not base64 !!' })
    const bytes = fromBase64Url(captured.e)!
    const flipped = bytes.slice()
    flipped[flipped.length - 70] = flipped[flipped.length - 70]! ^ 1 // inside the ciphertext
    await send({ e: toBase64Url(flipped) })
    // The car's older, genuine envelope: ignored, as the old awareness client of a restarted
    // device that an honest relay still holds would be — the newest state stays.
    await send(captured)
    expect(view(phone, car)).toMatchObject({ online: true, activity: 'driving' })
    evil.destroy()
    await net.settle()

    expect(rejected).toEqual([RejectCode.Malformed, RejectCode.Malformed, RejectCode.BadSignature])
    expect(phone.rejectionCounts()).toMatchObject({ [RejectCode.Malformed]: 2, [RejectCode.BadSignature]: 1 })
    expect(phone.rejectionCounts()[RejectCode.Replay]).toBeUndefined()
    expect(view(phone, car)).toMatchObject({ online: true, activity: 'driving' })
    expect(phone.presence.list().map((e) => e.deviceId).sort()).toEqual([phone.deviceId, car.deviceId].sort())
  })

  it('a device that silently disappears goes offline within the 30 s awareness timeout (fake timers)', async () => {
    // Fake only intervals and the clock: y-protocols' awareness check, presence heartbeats and
    // timeouts run on them; the loopback pump and sealing keep their real (setTimeout) timers.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const { devs, net } = await start(['phone', 'car'], 74)
    const [phone, car] = devs.map((d) => d.dev) as [ContextSync, ContextSync]
    car.presence.set({ activity: 'driving' })
    await net.settle()
    expect(view(phone, car)?.online).toBe(true)

    // Still connected, heartbeats keep it online well past the timeout.
    vi.advanceTimersByTime(45_000)
    await net.settle()
    expect(view(phone, car)).toMatchObject({ online: true, activity: 'driving' })

    // The network goes silent (a frozen device, a half-open connection): nothing arrives any more.
    net.setFaults({ drop: 1 })
    vi.advanceTimersByTime(20_000)
    expect(view(phone, car)?.online).toBe(true)
    vi.advanceTimersByTime(13_000) // 33 s of silence: past the 30 s timeout (+ one 3 s check)
    expect(view(phone, car)?.online).toBe(false)
    expect(view(car, phone)?.online).toBe(false)

    // It comes back: its next heartbeat is newer than anything seen, so it is online again.
    net.setFaults({})
    vi.advanceTimersByTime(14_000)
    net.resync()
    await net.settle()
    expect(view(phone, car)).toMatchObject({ online: true, activity: 'driving' })
    expect(phone.rejectionCounts()).toEqual({})
  })

  it('a relay replaying a departed device\'s last presence cannot keep it online past the timeout (fake timers)', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const { devs, net } = await start(['phone', 'car'], 75)
    const [phone, car] = devs.map((d) => d.dev) as [ContextSync, ContextSync]
    car.presence.set({ activity: 'driving' })
    await net.settle()
    const last = phone.replica('personal')!.awareness.getStates().get(car.replica('personal')!.awareness.clientID)
    await car.close()
    await net.settle()
    expect(view(phone, car)?.online).toBe(false)

    // The relay re-announces the car's last genuine envelope under a client of its own, and keeps
    // renewing it (y-protocols renews a local state every 15 s).
    const doc = new Y.Doc()
    const replayer = new Awareness(doc)
    replayer.setLocalState(null)
    net.transport({ name: 'relay-replay' }).attach({ roomId: phone.roomId('personal'), doc, awareness: replayer })
    replayer.setLocalState(last as Record<string, unknown>)
    await net.settle()
    // Byte-identical to the last accepted envelope: not refused (a reconnect re-announces exactly
    // this), so the car shows up again — but only until no *newer* presence arrived for 30 s.
    expect(phone.rejectionCounts()).toEqual({})
    expect(view(phone, car)?.online).toBe(true)
    for (let t = 0; t < 60_000; t += 5_000) {
      vi.advanceTimersByTime(5_000)
      await net.settle()
    }
    expect(phone.replica('personal')!.awareness.getStates().has(replayer.clientID)).toBe(true)
    expect(view(phone, car)?.online).toBe(false)
    replayer.destroy()
  })

  it('a revoked device drops out of presence; its presence is refused and others re-seal under the new epoch', async () => {
    const { devs, net } = await start(['phone', 'car', 'pc'], 76)
    const [phone, car, pc] = devs.map((d) => d.dev) as [ContextSync, ContextSync, ContextSync]
    car.presence.set({ activity: 'driving' })
    await net.settle()
    expect(view(pc, car)?.online).toBe(true)
    const epochBefore = phone.replica('personal')!.awareness.getLocalState() as { e: string }
    await phone.devices.revoke(car.deviceId)
    await converge([phone, pc], net)
    for (const dev of [phone, pc]) {
      expect(dev.presence.list().map((e) => e.deviceId)).not.toContain(car.deviceId)
      expect(dev.presence.get(car.deviceId)).toBeUndefined()
    }
    // Phone's presence was re-sealed under the personal scope's new epoch (byte 2 of the envelope).
    const after = phone.replica('personal')!.awareness.getLocalState() as { e: string }
    expect(fromBase64Url(after.e)![2]).toBeGreaterThan(fromBase64Url(epochBefore.e)![2]!)
    expect(view(pc, phone)?.online).toBe(true)
  })
})

describe('presence plaintext', () => {
  it('round-trips v2 (with logSeq), still reads v1, and refuses trailing or oversized fields', () => {
    const payload = { at: 1_700_000_000_000, activity: 'driving', activeSessionId: 's1', logSeq: 4097 }
    expect(decodePresence(encodePresence(payload))).toEqual(payload)
    expect(decodePresence(encodePresence({ at: 5 }))).toEqual({ at: 5 })
    const v1 = encoding.createEncoder()
    encoding.writeUint8(v1, 1)
    encoding.writeVarUint(v1, 7)
    encoding.writeVarString(v1, 'walking')
    encoding.writeVarString(v1, '')
    expect(decodePresence(encoding.toUint8Array(v1))).toEqual({ at: 7, activity: 'walking' })
    const trailing = new Uint8Array([...encodePresence(payload), 0])
    expect(decodePresence(trailing)).toBeUndefined()
    expect(decodePresence(encodePresence({ at: 1, activity: 'x'.repeat(201) }))).toBeUndefined()
    expect(decodePresence(new Uint8Array([3, 0, 0, 0, 0]))).toBeUndefined()
  })
})

describe('presence seqs', () => {
  it('newer is new, the identical latest is the same, older is stale (ignored), the same seq with other bytes is a replay', () => {
    const seqs = new PresenceSeqs()
    const at = (seq: number, byte: number) => ({ senderId: 'a'.repeat(32), seq, bytes: new Uint8Array([byte]) }) as unknown as Parameters<PresenceSeqs['check']>[0]
    expect(seqs.check(at(10, 1))).toBe('new')
    expect(seqs.check(at(10, 1))).toBe('same')
    expect(seqs.check(at(9, 2))).toBe('stale')
    expect(seqs.check(at(10, 3))).toBe('replay')
    expect(seqs.check(at(11, 4))).toBe('new')
  })
})
