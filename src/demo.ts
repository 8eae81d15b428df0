/**
 * `contextsync demo` / `npm run demo`: one person's phone, glasses, car and PC sync through an
 * embedded relay (a free port on 127.0.0.1, a temporary data dir). The phone and the PC are owner
 * devices; the glasses and the car join with invite codes and get only the scopes they may hold.
 * They remember things and carry one conversation across devices; the demo prints what each
 * device sees and checks that they agree. Node only (it runs a relay).
 *
 * @module
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { websocketTransport } from './adapters/websocket.js'
import { memoryStorage } from './adapters/memory-storage.js'
import type { Transport } from './adapters/transport.js'
import { createAccount } from './facade/account.js'
import { ContextSync } from './facade/context-sync.js'
import { createRelay, silentLogger } from './relay/index.js'

/** Run the demo; `print` receives each output line. Resolves to the process exit code. */
export async function runDemo(print: (line: string) => void = console.log): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'contextsync-demo-'))
  const relay = await createRelay({ port: 0, dataDir, logger: silentLogger, persistence: { mergeIntervalMs: 200 } })
  const transports: Transport[] = []
  const transport = () => {
    const t = websocketTransport({ url: relay.url, WebSocketPolyfill: WebSocket, maxBackoffTime: 500 })
    transports.push(t)
    return t
  }
  const devices: ContextSync[] = []
  try {
    print(`contextsync demo — a relay on ${relay.url} (data in ${dataDir}), four devices of one account`)
    const account = await createAccount()
    const phone = await ContextSync.open({ account, device: { kind: 'phone', name: "Ana's phone" }, storage: memoryStorage(), transports: [transport()] })
    const pc = await ContextSync.open({ account, device: { kind: 'pc', name: "Ana's PC" }, storage: memoryStorage(), transports: [transport()] })
    devices.push(phone, pc)

    print('')
    print('1. The phone invites the glasses and the car; each joins with its code.')
    // Each screen shows six digits over the whole exchange; Ana confirms on both that they match.
    const pair = async (kind: 'glasses' | 'car', name: string, label: string) => {
      let ownerSas = ''
      const invite = await phone.devices.invite({ kind, name, confirm: ({ sas }) => ((ownerSas = sas), true) })
      let joinerSas = ''
      const dev = await ContextSync.join({ invite: invite.code, device: { kind, name }, storage: memoryStorage(), transports: [transport()], confirmSas: (sas) => ((joinerSas = sas), true) })
      print(`   ${label} code ${invite.code}: the phone shows ${ownerSas}, ${kind === 'glasses' ? 'the glasses show' : `the ${kind} shows`} ${joinerSas}`)
      return dev
    }
    const glasses = await pair('glasses', "Ana's glasses", 'glasses:')
    devices.push(glasses)
    const car = await pair('car', "Ana's car", 'car:    ')
    devices.push(car)

    print('2. The phone remembers a few things (one of them health data).')
    await phone.memory.remember({ text: 'Prefers oat milk in coffee', kind: 'preference', tags: ['food', 'coffee'] })
    await phone.memory.remember({ text: 'Cycles to work along the river path', kind: 'fact', tags: ['commute'] })
    await phone.memory.remember({ text: 'Dentist appointment on Friday at 9:00', kind: 'event', scope: 'health', tags: ['appointments'] })
    await settle(devices)

    print('3. On the glasses, while cycling, Ana starts asking.')
    const session = glasses.sessions.start({ scope: 'personal', title: 'Coffee on the way' })
    await session.append({ role: 'user', text: 'Where can I get a coffee on my way to work?' })
    await settle(devices)

    print('4. In the car she continues the same conversation.')
    await car.sessions.open(session.id).append({ role: 'user', text: 'Actually I am driving today — somewhere with parking.' })
    await car.memory.remember({ text: 'Sometimes drives to work', kind: 'fact', tags: ['commute'] })
    await settle(devices)

    print('5. The PC assistant streams the answer token by token.')
    const answer = pc.sessions.open(session.id).stream({ role: 'assistant' })
    const milk = pc.memory.recall({ text: 'coffee milk', limit: 1 })[0]
    for (const token of ['Try ', 'Riverside ', 'Roasters ', '— ', 'free ', 'parking, ', 'and ', 'they ', 'have ']) answer.write(token)
    answer.write(milk ? 'oat milk.' : 'good coffee.')
    await answer.end()
    await settle(devices)

    print('')
    print('What each device sees:')
    for (const dev of devices) {
      const s = dev.sessions.get(session.id)
      const role = dev.isOwner ? 'owner' : 'member'
      print(
        `  ${dev.name.padEnd(14)} ${role.padEnd(6)} scopes ${dev.scopes.available().join(',').padEnd(44)} ` +
          `${String(dev.memory.list().length).padStart(2)} memories, ${s?.turns.length ?? 0} turns`,
      )
    }
    print('')
    print('The conversation, as the glasses show it:')
    for (const turn of glasses.sessions.get(session.id)?.turns ?? []) {
      const from = devices.find((d) => d.deviceId === turn.deviceId)?.kind ?? 'unknown'
      print(`  [${turn.role} via ${from}] ${turn.text}`)
    }
    print('')
    print(`Recall on the car for "commute": ${car.memory.recall({ text: 'commute', limit: 3 }).map((m) => m.text).join(' | ')}`)
    print(`Health items on the car: ${car.memory.list().filter((m) => m.scope === 'health').length} (it holds no health key)`)

    await relay.close()
    const stored = readdirSync(dataDir).map((f) => readFileSync(join(dataDir, f)))
    const leaked = stored.some((b) => b.includes('oat milk') || b.includes('Dentist'))
    print(`Relay data dir: ${stored.reduce((n, b) => n + b.length, 0)} bytes, plaintext found: ${leaked ? 'YES' : 'none'}`)

    const reference = JSON.stringify(phone.sessions.get(session.id))
    const agree = devices.every((d) => JSON.stringify(d.sessions.get(session.id)) === reference)
    const carClean = car.memory.list().every((m) => m.scope !== 'health')
    const ok = agree && carClean && !leaked
    print('')
    print(ok ? 'All four devices agree; the car never held health data; the relay saw only ciphertext.' : 'Something went wrong (see above).')
    return ok ? 0 : 1
  } finally {
    await Promise.all(devices.map((d) => d.close()))
    for (const t of transports) await t.close()
    await relay.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/** Wait until every device has flushed and their views of each shared scope agree. */
async function settle(devices: ContextSync[], timeoutMs = 10_000): Promise<void> {
  await Promise.all(devices.map((d) => d.flush()))
  const view = (d: ContextSync, scope: string) =>
    JSON.stringify([d.memory.list({ scope }).map((m) => m.id), d.sessions.list({ scope }).map((s) => [s.id, s.turns.length, s.turns.map((t) => t.done)])])
  const agree = () =>
    ['personal'].every((scope) => new Set(devices.map((d) => view(d, scope))).size === 1)
  const start = Date.now()
  while (!agree() && Date.now() - start < timeoutMs) await new Promise((r) => setTimeout(r, 20))
}
