/**
 * Randomized convergence: devices of one account write memories and sessions while a seeded
 * simulator delays, reorders, duplicates and drops messages, partitions and heals the network, and
 * devices restart from their storage mid-run. Every replica must end with identical inner state.
 *
 * Replay one seed: CONTEXTSYNC_SEED=123 npx vitest run test/facade/random.test.ts
 * More seeds:      CONTEXTSYNC_SEEDS=1000 npx vitest run test/facade/random.test.ts
 */
import { describe, expect, it } from 'vitest'
import * as prng from 'lib0/prng'
import { ContextSync, createAccount, loopbackNetwork, type LoopbackNetwork } from '../../src/index.js'
import { converge, innerState, openDevice, type TestDevice } from '../helpers/devices.js'

const SEEDS = Number(process.env.CONTEXTSYNC_SEEDS ?? 200)
const ONLY_SEED = process.env.CONTEXTSYNC_SEED === undefined ? undefined : Number(process.env.CONTEXTSYNC_SEED)
const STEPS = 40
const SCOPES = ['personal', 'health', 'work', 'local'] as const
const KINDS = ['phone', 'glasses', 'car', 'pc'] as const

/** The scopes of SCOPES a device holds (kinds hold different scopes). */
function scopesOf(dev: ContextSync): string[] {
  const held = dev.scopes.available()
  return SCOPES.filter((s) => held.includes(s))
}

async function runSeed(seed: number): Promise<void> {
  const gen = prng.create(seed)
  const account = await createAccount()
  const net: LoopbackNetwork = loopbackNetwork({ seed, layout: prng.bool(gen) ? 'hub' : 'mesh' })
  const sync = { compaction: { maxEntries: prng.int32(gen, 4, 24), idleMs: prng.bool(gen) ? 0 : 5 } }
  const deviceCount = prng.int32(gen, 2, 4)
  const devices: TestDevice[] = []
  try {
    for (let i = 0; i < deviceCount; i++) devices.push(await openDevice(account, net, KINDS[i]!, undefined, { sync }))
    net.setFaults({
      minDelay: 0,
      maxDelay: prng.int32(gen, 0, 6),
      reorder: prng.real53(gen) * 0.5,
      duplicate: prng.real53(gen) * 0.2,
      drop: prng.real53(gen) * 0.2,
    })
    for (let step = 0; step < STEPS; step++) {
      const index = prng.int32(gen, 0, devices.length - 1)
      const device = devices[index]!
      const dev = device.dev
      const roll = prng.real53(gen)
      const memories = dev.memory.list()
      const sessions = dev.sessions.list()
      if (roll < 0.3) {
        await dev.memory.remember({ text: `m${step} ${prng.word(gen, 3, 12)}`, scope: prng.oneOf(gen, scopesOf(dev)), tags: [prng.word(gen, 1, 4)] })
      } else if (roll < 0.42 && memories.length > 0) {
        const target = prng.oneOf(gen, memories)
        await dev.memory.update(target.id, { text: `edited ${step} ${prng.word(gen, 2, 8)}` })
      } else if (roll < 0.47 && memories.length > 0) {
        await dev.memory.forget(prng.oneOf(gen, memories).id)
      } else if (roll < 0.55) {
        const s = dev.sessions.start({ scope: prng.oneOf(gen, scopesOf(dev)), title: `s${step}` })
        await s.append({ role: 'user', text: prng.word(gen, 3, 20) })
      } else if (roll < 0.68 && sessions.length > 0) {
        const s = dev.sessions.open(prng.oneOf(gen, sessions).id)
        const w = s.stream({ role: 'assistant' })
        const tokens = prng.int32(gen, 1, 6)
        for (let t = 0; t < tokens; t++) w.write(`${prng.word(gen, 1, 5)} `)
        if (prng.bool(gen)) await w.end()
      } else if (roll < 0.76) {
        const shuffled = [...devices].sort(() => prng.real53(gen) - 0.5)
        const cut = prng.int32(gen, 1, shuffled.length - 1)
        net.partition(shuffled.slice(0, cut).map((d) => d.transport), shuffled.slice(cut).map((d) => d.transport))
      } else if (roll < 0.84) {
        net.heal()
      } else if (roll < 0.9) {
        // Restart from storage alone, with a fresh transport on the same network.
        await dev.close()
        const transport = net.transport({ name: `${device.kind}-restart-${step}` })
        const reopened = await ContextSync.open({ storage: device.storage, transports: [transport] })
        expect(reopened.deviceId).toBe(dev.deviceId)
        devices[index] = { ...device, dev: reopened, transport }
      } else {
        await new Promise((r) => setTimeout(r, prng.int32(gen, 0, 3)))
      }
    }
    net.setFaults({})
    net.heal()
    await converge(
      devices.map((d) => d.dev),
      net,
    )
    // Every pair of devices agrees on every synced scope they both hold.
    for (const a of devices) {
      for (const b of devices) {
        if (a === b) continue
        const shared = scopesOf(a.dev).filter((s) => s !== 'local' && scopesOf(b.dev).includes(s))
        expect(innerState(b.dev, shared), `seed ${seed}: ${b.kind} differs from ${a.kind}`).toEqual(innerState(a.dev, shared))
      }
    }
    for (const d of devices) {
      expect(d.dev.rejectionCounts(), `seed ${seed}: ${d.kind} rejected envelopes`).toEqual({})
    }
  } catch (error) {
    console.error(`core-random: failing seed ${seed} (replay: CONTEXTSYNC_SEED=${seed} npx vitest run test/facade/random.test.ts)`)
    throw error
  } finally {
    await Promise.all(devices.map((d) => d.dev.close()))
    net.destroy()
  }
}

describe('randomized convergence under faults, partitions and restarts', () => {
  const seeds = ONLY_SEED === undefined ? Array.from({ length: SEEDS }, (_, i) => i + 1) : [ONLY_SEED]
  it(`converges for ${seeds.length} seeds`, async () => {
    console.log(`core-random: seeds ${seeds[0]}..${seeds[seeds.length - 1]}`)
    for (const seed of seeds) await runSeed(seed)
  }, 300_000)
})
