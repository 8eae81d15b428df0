/**
 * The bounded real-relay slice: frames sent to a relay (`createRelay`, auth off as in
 * test/relay/fuzz.test.ts) over 127.0.0.1, one connection per input. After the relay's greeting
 * is drained (a sync step 1 answered), the input is sent, then another step 1: the relay either
 * answers — it took the frame — or closes with a named close code (src/wire/close-codes.ts).
 * Failures: an unknown close code, 1011 (the room broke), no answer within 5 s, or a relay that
 * stops answering /healthz.
 *
 * @module
 */
import WebSocket from 'ws'
import { CloseCode, closeCodeName, isCloseCode } from '../../../src/wire/close-codes.js'
import { createRelay, silentLogger, type Relay } from '../../../src/relay/index.js'
import { fixture } from '../fixture.js'
import { setupRng } from '../rng.js'
import { PropertyViolation, type Target } from '../target.js'
import { frameSamples, generateFrame } from './frames.js'

const ANSWER_MS = 5_000
const INPUTS_PER_ROOM = 100
/** Sync step 1 of an empty doc: the relay answers with a step 2 (`0 · 1 · …`), after every frame before it. */
const PING = Uint8Array.of(0, 0, 1, 0)

/** A sync step 2 frame: the answer to a step 1 (the relay's own greeting is a step 1, `0 · 0 · …`). */
function isStep2(data: Buffer): boolean {
  return data[0] === 0 && data[1] === 1
}

/** Send `frames` one by one on an open socket; resolve with `answered` or the close code. */
function exchange(url: string, input: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.binaryType = 'nodebuffer'
    let phase: 'greeting' | 'input' = 'greeting'
    let settled = false
    const done = (outcome: string | Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate()
      if (outcome instanceof Error) reject(outcome)
      else resolve(outcome)
    }
    const timer = setTimeout(() => done(new PropertyViolation(`relay neither answered nor closed within ${ANSWER_MS} ms (${phase})`)), ANSWER_MS)
    ws.on('error', () => {})
    ws.on('open', () => ws.send(PING))
    ws.on('message', (data: Buffer) => {
      // Broadcasts (updates, awareness) and the relay's greeting are not answers.
      if (!isStep2(data)) return
      if (phase === 'greeting') {
        phase = 'input'
        ws.send(input)
        ws.send(PING)
        return
      }
      // A step 2 after the input: the relay read the input and went on serving.
      done('answered')
    })
    ws.on('close', (code: number) => {
      if (phase === 'greeting') return done(new PropertyViolation(`relay closed a fresh connection with ${code} before the input`))
      if (code === CloseCode.InternalError) return done(new PropertyViolation('relay closed with 1011: the room could not serve after this frame'))
      if (!isCloseCode(code)) return done(new PropertyViolation(`relay closed with unknown code ${code}`))
      done(`refused ${code} ${closeCodeName(code)}`)
    })
  })
}

export const relayTarget: Target = {
  name: 'relay',
  description: 'frames through a real relay over 127.0.0.1, one connection per input (src/relay/)',
  weight: 0.6,
  budgetMs: 1000,
  async setup(seed) {
    const samples = frameSamples(setupRng(seed, 'relay'), fixture(seed))
    const relay: Relay = await createRelay({
      host: '127.0.0.1',
      port: 0,
      auth: 'none',
      logger: silentLogger,
      limits: { messagesPerSecond: 1_000_000, burst: 1_000_000 },
    })
    let inputs = 0
    return {
      generate: (gen) => generateFrame(gen, samples),
      run(input) {
        const room = `acct.fuzz-${Math.floor(inputs++ / INPUTS_PER_ROOM)}`
        return exchange(`${relay.url}/${room}`, input)
      },
      async close() {
        const health = await fetch(`http://127.0.0.1:${relay.port}/healthz`)
        await relay.close()
        if (health.status !== 200) throw new PropertyViolation(`relay /healthz answered ${health.status} after the fuzz inputs`)
      },
    }
  },
}
