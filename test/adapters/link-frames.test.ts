/**
 * Link packets (WIRE.md "Link frames"): fragmentation to every BLE MTU and back, the bounded
 * reassembly buffer, and the coded refusals for packets that are malformed, oversized, repeated
 * or out of order. Randomized parts use a seeded PRNG and print the seed.
 */
import { describe, expect, it } from 'vitest'
import * as prng from 'lib0/prng'
import { LinkError } from '../../src/adapters/link-errors.js'
import { ReceiveCredit, SendCredit } from '../../src/adapters/link-flow.js'
import { checkMtu, encodeHello, encodeState, Fragmenter, parsePacket, Reassembler, type LinkPacket } from '../../src/adapters/link-frames.js'
import { encodeMessage, parseMessage } from '../../src/adapters/link-messages.js'

type DataPacket = Extract<LinkPacket, { kind: 'start' | 'cont' }>

function fragments(message: Uint8Array, mtu: number, firstSeq = 0): Uint8Array[] {
  const fragmenter = new Fragmenter(message, mtu)
  const out: Uint8Array[] = []
  for (let seq = firstSeq; !fragmenter.done; seq++) out.push(fragmenter.next(seq))
  return out
}

function data(packet: Uint8Array, mtu: number): DataPacket {
  const parsed = parsePacket(packet, mtu)
  if (parsed.kind !== 'start' && parsed.kind !== 'cont') throw new Error(`not a data packet: ${parsed.kind}`)
  return parsed
}

function reason(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    if (error instanceof LinkError) return error.reason
    throw error
  }
  return 'no error'
}

function randomBytes(gen: prng.PRNG, length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = prng.uint32(gen, 0, 255)
  return out
}

describe('fragmentation', () => {
  for (const mtu of [20, 185, 244, 512]) {
    it(`cuts messages to MTU ${mtu} and puts them back together byte for byte`, () => {
      const seed = 0x1000 + mtu
      const gen = prng.create(seed)
      const reassembler = new Reassembler(1 << 20)
      let seq = 0
      for (const length of [1, mtu - 3, mtu - 2, mtu, mtu + 1, 3 * mtu + 7, 70_000, prng.uint32(gen, 1, 5000)]) {
        const message = randomBytes(gen, length)
        const packets = fragments(message, mtu, seq)
        for (const packet of packets) expect(packet.length, `seed ${seed}`).toBeLessThanOrEqual(mtu)
        // A 2-byte header per packet (+ the length in the first): the payload share is what BLE allows.
        expect(packets.length, `seed ${seed}`).toBe(Math.max(1, Math.ceil((length + varuintSize(length)) / (mtu - 2))))
        let out: Uint8Array | undefined
        for (const packet of packets) {
          const result = reassembler.accept(data(packet, mtu))
          expect(result.error, `seed ${seed}`).toBeUndefined()
          out = result.message ?? out
        }
        seq += packets.length
        expect(out && Buffer.from(out).equals(Buffer.from(message)), `seed ${seed}, length ${length}`).toBe(true)
        expect(reassembler.heldBytes).toBe(0)
      }
    })
  }

  it('refuses an MTU outside 20..65536', () => {
    expect(reason(() => checkMtu(19))).toBe('invalid-argument')
    expect(reason(() => checkMtu(20.5))).toBe('invalid-argument')
    expect(checkMtu(20)).toBe(20)
    expect(checkMtu(512)).toBe(512)
  })
})

describe('reassembly refusals', () => {
  const mtu = 20
  const message = Uint8Array.from({ length: 100 }, (_, i) => i)

  it('refuses a repeated fragment with "duplicate" and still completes the message once', () => {
    const packets = fragments(message, mtu)
    const reassembler = new Reassembler(1024)
    const messages: Uint8Array[] = []
    const errors: string[] = []
    for (const packet of [packets[0]!, packets[1]!, packets[1]!, ...packets.slice(2), packets.at(-1)!]) {
      const result = reassembler.accept(data(packet, mtu))
      if (result.error) errors.push(result.error.reason)
      if (result.message) messages.push(result.message)
    }
    expect(errors).toEqual(['duplicate', 'duplicate'])
    expect(messages).toHaveLength(1)
    expect([...messages[0]!]).toEqual([...message])
  })

  it('refuses reordered fragments with "out-of-order" and keeps the partial message for the retransmission', () => {
    const first = fragments(message, mtu, 0)
    const reassembler = new Reassembler(1024)
    const messages: Uint8Array[] = []
    const errors: Array<{ reason: string; gap: boolean }> = []
    // Packet 1 overtakes packet 0's successor; the sender then goes back to 1 (go-back-N).
    const arrivals = [first[0]!, first[2]!, first[3]!, ...first.slice(1)]
    for (const packet of arrivals) {
      const result = reassembler.accept(data(packet, mtu))
      if (result.error) errors.push({ reason: result.error.reason, gap: result.gap })
      if (result.message) messages.push(result.message)
    }
    expect(errors).toEqual([
      { reason: 'out-of-order', gap: true },
      { reason: 'out-of-order', gap: true },
    ])
    expect(messages).toHaveLength(1)
    expect([...messages[0]!]).toEqual([...message])
  })

  it('refuses a message declaring more than the bound without buffering it, and skips its continuations', () => {
    const big = new Uint8Array(5000)
    const packets = fragments(big, mtu)
    const reassembler = new Reassembler(4096)
    const first = reassembler.accept(data(packets[0]!, mtu))
    expect(first.error?.reason).toBe('oversized')
    for (const packet of packets.slice(1)) {
      const result = reassembler.accept(data(packet, mtu))
      expect(result.error).toBeUndefined()
      expect(result.message).toBeUndefined()
    }
    expect(reassembler.peakBytes).toBe(0)
    // The next message is fine.
    const next = fragments(Uint8Array.of(9), mtu, packets.length)
    expect([...(reassembler.accept(data(next[0]!, mtu)).message ?? [])]).toEqual([9])
  })

  it('holds what arrived, not what a start claims: a 16 MiB claim costs the bytes actually sent', () => {
    const reassembler = new Reassembler(16 * 1024 * 1024)
    const claim = new Fragmenter(new Uint8Array(16 * 1024 * 1024), mtu).next(0)
    expect(reassembler.accept(data(claim, mtu)).error).toBeUndefined()
    expect(reassembler.heldBytes).toBeLessThan(mtu)
    reassembler.reset()
    expect(reassembler.heldBytes).toBe(0)
  })

  it('refuses malformed packets with "malformed" and ones over the MTU with "oversized"', () => {
    expect(reason(() => parsePacket(new Uint8Array(0), mtu))).toBe('malformed')
    expect(reason(() => parsePacket(Uint8Array.of(0x20, 0), mtu))).toBe('malformed') // version 2
    expect(reason(() => parsePacket(Uint8Array.of(0x1f, 0), mtu))).toBe('malformed') // kind 15
    expect(reason(() => parsePacket(Uint8Array.of(0x10, 0), mtu))).toBe('malformed') // start without length
    expect(reason(() => parsePacket(Uint8Array.of(0x10, 0, 2, 1, 2, 3), mtu))).toBe('malformed') // payload past its length
    expect(reason(() => parsePacket(Uint8Array.of(0x11, 0), mtu))).toBe('malformed') // empty continuation
    expect(reason(() => parsePacket(Uint8Array.of(0x13, 0, 0), mtu))).toBe('malformed') // short state
    expect(reason(() => parsePacket(new Uint8Array(21).fill(0x11), mtu))).toBe('oversized')
    const reassembler = new Reassembler(1024)
    expect(reassembler.accept({ kind: 'cont', seq: 0, payload: Uint8Array.of(1) }).error?.reason).toBe('malformed')
  })

  it('survives random bytes: every packet parses or is refused with a code, never anything else', () => {
    const seed = 0xf22
    const gen = prng.create(seed)
    const reassembler = new Reassembler(4096)
    for (let i = 0; i < 5000; i++) {
      const bytes = randomBytes(gen, prng.uint32(gen, 0, 30))
      if (i % 2 === 0 && bytes.length > 0) bytes[0] = 0x10 | (bytes[0]! & 0x03)
      try {
        const packet = parsePacket(bytes, 20)
        if (packet.kind === 'start' || packet.kind === 'cont') reassembler.accept(packet)
      } catch (error) {
        expect(error, `seed ${seed}, case ${i}`).toBeInstanceOf(LinkError)
      }
      expect(reassembler.heldBytes, `seed ${seed}`).toBeLessThanOrEqual(4096)
    }
  })
})

describe('control packets and messages', () => {
  it('round-trips HELLO and STATE, and fits them in the smallest MTU', () => {
    const hello = encodeHello({ role: 'responder', gotYours: true, maxMessageBytes: 16 << 20, nextSeq: 200, creditLimit: 40 })
    expect(hello.length).toBeLessThanOrEqual(20)
    expect(parsePacket(hello, 20)).toEqual({ kind: 'hello', role: 'responder', gotYours: true, maxMessageBytes: 16 << 20, nextSeq: 200, creditLimit: 40 })
    const state = encodeState({ nextSeq: 255, ack: 7, creditLimit: 31, replyWanted: true, resync: true, retransmit: false })
    expect(parsePacket(state, 20)).toEqual({ kind: 'state', nextSeq: 255, ack: 7, creditLimit: 31, replyWanted: true, resync: true, retransmit: false })
  })

  it('round-trips link messages and refuses truncated ones', () => {
    const open = { kind: 'open', ref: { num: 3, senderChose: true }, roomId: 'r'.repeat(60), token: 't'.repeat(300) } as const
    expect(parseMessage(encodeMessage(open))).toEqual(open)
    const refuse = { kind: 'refuse', ref: { num: 3, senderChose: false }, code: 4403, reason: 'forbidden' } as const
    expect(parseMessage(encodeMessage(refuse))).toEqual(refuse)
    const bytes = encodeMessage(open)
    expect(reason(() => parseMessage(bytes.subarray(0, bytes.length - 1)))).toBe('malformed')
    expect(reason(() => parseMessage(Uint8Array.of(9, 0)))).toBe('malformed')
    // An OPEN must name a number of its own sender.
    expect(reason(() => parseMessage(Uint8Array.of(0, 1, 1, 0x72, 0)))).toBe('malformed')
  })
})

describe('credit', () => {
  it('never lets the sender past the granted limit, ignores stale grants, and survives wrap-around', () => {
    const send = new SendCredit()
    const receive = new ReceiveCredit(8)
    expect(send.available).toBe(false) // nothing granted before the peer's HELLO
    send.grant(receive.limit)
    let sent = 0
    for (let round = 0; round < 100; round++) {
      while (send.available) {
        const seq = send.spend()
        expect(receive.covers(seq)).toBe(true)
        sent++
      }
      expect(receive.covers(send.next)).toBe(false)
      const stale = receive.limit
      const limit = receive.regrant(send.next)
      expect(limit).toBeDefined()
      send.grant(limit!)
      send.grant(stale) // arrives late: must not take credit back
      expect(send.available).toBe(true)
    }
    expect(sent).toBeGreaterThan(256) // the 8-bit sequence wrapped several times
  })
})

function varuintSize(n: number): number {
  let size = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    size++
  }
  return size
}

describe('priority lane', () => {
  const mtu = 20

  it('reassembles a priority message whose packets arrived between a large message’s', () => {
    const large = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff)
    const small = Uint8Array.from({ length: 40 }, (_, i) => 255 - i)
    const bulk = new Fragmenter(large, mtu)
    const priority = new Fragmenter(small, mtu, true)
    const reassembler = new Reassembler(1024)
    const messages: number[][] = []
    let seq = 0
    // Three bulk packets, the whole priority message, then the rest of the bulk one.
    for (const fragmenter of [bulk, bulk, bulk, priority, priority, priority, priority]) {
      if (fragmenter.done) continue
      const result = reassembler.accept(data(fragmenter.next(seq++), mtu))
      expect(result.error).toBeUndefined()
      if (result.message) messages.push([...result.message])
    }
    expect(messages).toEqual([[...small]])
    expect(reassembler.heldBytes).toBeGreaterThan(0) // the bulk message is still partial
    while (!bulk.done) {
      const result = reassembler.accept(data(bulk.next(seq++), mtu))
      if (result.message) messages.push([...result.message])
    }
    expect(messages).toEqual([[...small], [...large]])
  })

  it('refuses a priority start over the lane’s bound with "oversized", and the sender cannot make one', () => {
    const reassembler = new Reassembler(1 << 20)
    // kind 4 (priority start), seq 0, declared length 5000 (varuint), one byte of payload.
    const start = Uint8Array.of(0x14, 0, 0x88, 0x27, 1)
    expect(reassembler.accept(data(start, mtu)).error?.reason).toBe('oversized')
    expect(reason(() => new Fragmenter(new Uint8Array(5000), mtu, true))).toBe('invalid-argument')
  })
})
