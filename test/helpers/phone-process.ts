/**
 * The phone as another process of the account, for the PC MCP tests: test/fixtures/phone-process.ts
 * run under tsx against the test's relay, driven over its pipes with line-delimited JSON (the
 * protocol is described there). {@link phoneWorld} starts a relay, the phone process and a PC
 * paired to it in a fresh home, with the invite code passed over the pipe.
 *
 * Every phone process started here is tracked until it exited: call {@link stopPhoneProcesses}
 * from `afterEach`, which closes their stdin (the phone closes and exits) and SIGKILLs any that
 * do not exit within a few seconds — on a failed test too. A phone whose parent dies sees its
 * stdin close and exits by itself.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { onTestFinished } from 'vitest'
import { joinPc } from '../../adapters/pc/index.js'
import type { Relay } from '../../src/relay/index.js'
import type { PhoneCommandName, PhoneCommands, PhoneEvent, PhoneReply } from '../fixtures/phone-process.js'
import { closeRelays, startRelay } from '../relay/helpers.js'
import { pcHome, ROOT, until, type PcHome } from './pc.js'

export type { PhoneEvent, PhoneMemory, PhoneSession } from '../fixtures/phone-process.js'

const FIXTURE = join(ROOT, 'test/fixtures/phone-process.ts')
/** How long a closed-stdin phone gets to close its device and exit before it is SIGKILLed. */
const GRACE_MS = 3_000

/** Phones started since the last {@link stopPhoneProcesses}; `live` are those not exited yet. */
const started: PhoneProcess[] = []
const live = new Set<PhoneProcess>()

/** One phone child process. */
export class PhoneProcess {
  /** Every event the phone reported so far, in order. */
  readonly events: PhoneEvent[] = []
  private readonly pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>()
  private nextSeq = 1
  private errors = ''
  private readonly exited: Promise<void>
  private exitedWith: string | undefined

  /** @internal use {@link spawnPhone}. */
  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.setEncoding('utf8').on('data', (text: string) => (this.errors += text))
    createInterface({ input: child.stdout }).on('line', (line) => this.receive(line))
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitedWith = signal ?? `code ${code}`
        live.delete(this)
        for (const { reject } of this.pending.values()) reject(new Error(`the phone process exited (${this.exitedWith}) before replying: ${this.errors}`))
        this.pending.clear()
        resolve()
      })
    })
    // The fixture's stdin may close under a write when the child died; that surfaces as its exit.
    child.stdin.on('error', () => undefined)
  }

  /** What the phone wrote on stderr (a crash's stack, nothing else). */
  stderr(): string {
    return this.errors
  }

  /** Run one command on the phone; rejects with the phone's error code and message if it failed. */
  call<K extends PhoneCommandName>(cmd: K, args: PhoneCommands[K]['args'], timeoutMs = 30_000): Promise<PhoneCommands[K]['result']> {
    if (this.exitedWith !== undefined) return Promise.reject(new Error(`the phone process has exited (${this.exitedWith}): ${this.errors}`))
    const seq = this.nextSeq++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq)
        reject(new Error(`the phone process did not answer ${cmd} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(seq, {
        resolve: (result) => {
          clearTimeout(timer)
          resolve(result as PhoneCommands[K]['result'])
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      })
      this.child.stdin.write(`${JSON.stringify({ ...args, seq, cmd })}\n`)
    })
  }

  /** The first event (already reported or still to come) that `match` accepts. */
  event<E extends PhoneEvent['event']>(event: E, match: (e: Extract<PhoneEvent, { event: E }>) => boolean, what: string, timeoutMs = 20_000): Promise<Extract<PhoneEvent, { event: E }>> {
    return until(() => {
      const found = this.events.find((e): e is Extract<PhoneEvent, { event: E }> => e.event === event && match(e as Extract<PhoneEvent, { event: E }>))
      if (!found && this.exitedWith !== undefined) throw new Error(`the phone process exited (${this.exitedWith}) before ${what}: ${this.errors}`)
      return found
    }, what, timeoutMs)
  }

  /**
   * Close the phone's stdin (it closes its device and exits); SIGKILL it if it lingers. Resolves
   * with what went wrong — a phone that had to be killed, exited with an error or wrote on
   * stderr — or undefined.
   */
  async stop(): Promise<string | undefined> {
    let killed = false
    if (this.exitedWith === undefined) {
      this.child.stdin.end()
      const timer = setTimeout(() => {
        killed = true
        this.child.kill('SIGKILL')
      }, GRACE_MS)
      await this.exited
      clearTimeout(timer)
    }
    if (killed) return `the phone process did not exit within ${GRACE_MS} ms of its stdin closing (SIGKILLed)`
    if (this.exitedWith !== 'code 0') return `the phone process exited (${this.exitedWith}): ${this.errors}`
    if (this.errors !== '') return `the phone process wrote on stderr: ${this.errors}`
    return undefined
  }

  private receive(line: string): void {
    let message: PhoneReply | PhoneEvent
    try {
      message = JSON.parse(line) as PhoneReply | PhoneEvent
    } catch {
      this.errors += `unparsable stdout line (${line.length} chars)\n`
      return
    }
    if ('event' in message) {
      this.events.push(message)
      return
    }
    const waiting = this.pending.get(message.seq)
    if (!waiting) return
    this.pending.delete(message.seq)
    if (message.ok) waiting.resolve(message.result)
    else waiting.reject(Object.assign(new Error(`phone ${message.error.code}: ${message.error.message}`), { code: message.error.code }))
  }

  /** @internal */
  kill(): void {
    if (this.exitedWith === undefined) this.child.kill('SIGKILL')
  }
}

/** Start a phone process on `relayUrl` and wait for it to be open. */
export async function spawnPhone(relayUrl: string): Promise<{ phone: PhoneProcess; deviceId: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, relayUrl], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  const phone = new PhoneProcess(child)
  started.push(phone)
  live.add(phone)
  const ready = await phone.event('ready', () => true, 'the phone process to be open', 30_000)
  return { phone, deviceId: ready.deviceId }
}

/**
 * Stop every phone process started since the last call (from `afterEach`, so a failed test stops
 * them too); then fail if one of them crashed, hung or wrote on stderr.
 */
export async function stopPhoneProcesses(): Promise<void> {
  const problems = (await Promise.all([...started.splice(0)].map((phone) => phone.stop()))).filter((p) => p !== undefined)
  if (problems.length > 0) throw new Error(problems.join('\n'))
}

// A test run that ends without the afterEach (a crashed worker) still takes its phones down.
process.once('exit', () => {
  for (const phone of live) phone.kill()
})

/** A relay, the phone in its own process, and a PC paired to it in a fresh home (closed again). */
export interface PhoneWorld {
  relay: Relay
  relayUrl: string
  phone: PhoneProcess
  phoneDeviceId: string
  home: PcHome
  pcDeviceId: string
}

/**
 * Start the relay and the phone process, pair the PC in a fresh home with the invite code the
 * phone sends over the pipe, close the PC (its `contextsync mcp` process will reopen it).
 */
export async function phoneWorld(): Promise<PhoneWorld> {
  const relay = await startRelay()
  onTestFinished(() => closeRelays())
  const { phone, deviceId: phoneDeviceId } = await spawnPhone(relay.url)
  const home = pcHome()
  const { code } = await phone.call('invite', { kind: 'pc', name: 'Desk PC' })
  const pc = await joinPc({ invite: code, relayUrl: relay.url, dataDir: home.dataDir, keyFile: home.keyFile, env: {}, maxBackoffTime: 300 })
  const pcDeviceId = pc.sync.deviceId
  await pc.close()
  await phone.event('paired', (e) => e.deviceId === pcDeviceId, 'the phone seeing the PC paired')
  return { relay, relayUrl: relay.url, phone, phoneDeviceId, home, pcDeviceId }
}
