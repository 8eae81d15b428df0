/**
 * `contextsync demo` / `npm run demo`: one person's phone, glasses, car and PC. The phone
 * (`openPhone`) and the PC are owner devices on an embedded relay (a free port on 127.0.0.1, a
 * temporary data dir), the car joins on the relay, and the glasses (`openGlasses`) pair over the
 * relay, then sync *through the phone* over a simulated Bluetooth link (`bleLinkSimulator`: MTU
 * 185, 30 ms connection interval), and keep syncing with the phone alone while the phone loses its
 * network. Each device gets only the scopes it may hold. The demo prints what each device sees
 * and checks that they agree; it never prints invite codes, keys or relay tokens. Node only (it
 * runs a relay).
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
import { bleLinkSimulator } from './testing/ble-link.js'
import { openPhone } from '../adapters/phone/index.js'
import { openGlasses } from '../adapters/glasses/index.js'

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
  // The Bluetooth link runs in virtual time, pumped along with real time.
  const sim = bleLinkSimulator({ seed: 7, mtu: 185, connectionIntervalMs: 30 })
  let pumping = true
  const pump = (async () => {
    while (pumping) {
      await new Promise((r) => setTimeout(r, 10))
      await sim.advance(10)
    }
  })()
  const devices: ContextSync[] = []
  const closers: Array<() => Promise<void>> = []
  try {
    print(`contextsync demo — a relay on ${relay.url} (data in ${dataDir}), four devices of one account`)
    const account = await createAccount()
    const phone = await openPhone({ account, name: "Ana's phone", storage: memoryStorage(), relayUrl: relay.url, WebSocket, maxBackoffTime: 500, link: { clock: sim.clock, keepaliveMs: 0 } })
    closers.push(() => phone.close())
    const pc = await ContextSync.open({ account, device: { kind: 'pc', name: "Ana's PC" }, storage: memoryStorage(), transports: [transport()] })
    devices.push(phone.device, pc)

    print('')
    print('1. The phone invites the glasses and the car; each joins with its code (not shown: it is a secret).')
    // Each screen shows six digits over the whole exchange; Ana confirms on both that they match.
    let ownerSas = ''
    let joinerSas = ''
    const glassesInvite = await phone.invite({ kind: 'glasses', name: "Ana's glasses", confirmSas: (sas) => ((ownerSas = sas), true) })
    const glasses = await openGlasses({
      invite: glassesInvite.code,
      name: "Ana's glasses",
      storage: memoryStorage(),
      relayUrl: relay.url,
      WebSocket,
      maxBackoffTime: 500,
      confirmSas: (sas) => ((joinerSas = sas), true),
      power: { charging: false, batteryLevel: 0.8, screenOn: true },
      link: { clock: sim.clock, keepaliveMs: 0 },
    })
    closers.push(() => glasses.close())
    print(`   glasses: the phone shows ${ownerSas}, the glasses show ${joinerSas}`)
    const carInvite = await phone.device.devices.invite({ kind: 'car', name: "Ana's car", confirm: ({ sas }) => ((ownerSas = sas), true) })
    const car = await ContextSync.join({ invite: carInvite.code, device: { kind: 'car', name: "Ana's car" }, storage: memoryStorage(), transports: [transport()], confirmSas: (sas) => ((joinerSas = sas), true) })
    print(`   car:     the phone shows ${ownerSas}, the car shows ${joinerSas}`)
    devices.push(glasses.device, car)

    // The glasses have no Wi-Fi now: they reach the account over Bluetooth, through the phone.
    glasses.setNetwork({ wifi: false })
    const ble = sim.connect()
    phone.serveLink(ble.central)
    glasses.connectLink(ble.peripheral)
    print(`   the glasses connect to the phone over Bluetooth (MTU ${sim.options.mtu}, ${sim.options.connectionIntervalMs} ms interval); their rooms go ${glasses.path === 'link' ? 'through the phone' : 'to the relay'}`)

    print('2. The phone remembers a few things (one of them health data).')
    await phone.device.memory.remember({ text: 'Prefers oat milk in coffee', kind: 'preference', tags: ['food', 'coffee'] })
    await phone.device.memory.remember({ text: 'Cycles to work along the river path', kind: 'fact', tags: ['commute'] })
    await phone.device.memory.remember({ text: 'Dentist appointment on Friday at 9:00', kind: 'event', scope: 'health', tags: ['appointments'] })
    await settle(devices)

    print('3. On the glasses, while cycling, Ana starts asking.')
    const session = glasses.device.sessions.start({ scope: 'personal', title: 'Coffee on the way' })
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
    print('6. The phone loses its network for a while; the glasses keep syncing with the phone alone.')
    phone.setNetwork({ online: false })
    const offline = await glasses.device.memory.remember({ text: 'Left the bike at the station', kind: 'fact', tags: ['commute'] })
    const onPhone = await until(() => phone.device.memory.get(offline.id) !== undefined)
    await new Promise((r) => setTimeout(r, 300))
    print(`   phone has the glasses' note: ${onPhone ? 'yes' : 'NO'}; the PC has it: ${pc.memory.get(offline.id) ? 'yes' : 'not yet (the phone is offline)'}`)
    phone.setNetwork({ online: true })
    const converged = await until(() => pc.memory.get(offline.id) !== undefined && car.memory.get(offline.id) !== undefined)
    print(`   the phone is back online: the PC and the car ${converged ? 'have it now' : 'still DO NOT have it'}`)
    await settle(devices)
    const radio = ble.radio.peripheral
    print(`   Bluetooth so far: ${ble.stats.sent} packets, glasses radio on ${(radio.radioOnMicros / 1000).toFixed(1)} ms, ${(radio.energyMicroJoules / 1000).toFixed(2)} mJ`)

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
    for (const turn of glasses.device.sessions.get(session.id)?.turns ?? []) {
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

    const reference = JSON.stringify(phone.device.sessions.get(session.id))
    const agree = devices.every((d) => JSON.stringify(d.sessions.get(session.id)) === reference)
    const carClean = car.memory.list().every((m) => m.scope !== 'health')
    const glassesClean = glasses.device.memory.list().every((m) => m.scope !== 'health')
    const ok = agree && carClean && glassesClean && !leaked && onPhone && converged
    print('')
    print(ok ? 'All four devices agree; the glasses synced through the phone, also while it was offline; neither the car nor the glasses held health data; the relay saw only ciphertext.' : 'Something went wrong (see above).')
    return ok ? 0 : 1
  } finally {
    for (const close of closers.reverse()) await close()
    await Promise.all(devices.map((d) => d.close()))
    pumping = false
    await pump
    for (const t of transports) await t.close()
    await relay.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/** Wait until `predicate` holds (true) or 10 s passed (false). */
async function until(predicate: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) return false
    await new Promise((r) => setTimeout(r, 20))
  }
  return true
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
