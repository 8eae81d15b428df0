/**
 * `contextsync demo`: one person's phone, glasses, car and PC — four devices of one account —
 * remember things and carry one conversation across devices, printing what each device sees.
 *
 * @module
 */
import { ContextSync } from './facade/context-sync.js'
import { createAccount } from './facade/account.js'
import { memoryStorage } from './adapters/memory-storage.js'
import { loopbackNetwork } from './adapters/loopback.js'
import type { Transport } from './adapters/transport.js'

/** Where the demo's devices sync through. */
export interface DemoNetwork {
  /** Human description, printed first. */
  describe: string
  /** A transport for one device. */
  transport(name: string): Transport
  /** Resolve once every device has converged (or give up after `timeoutMs`). */
  settle(devices: ContextSync[]): Promise<void>
  close(): Promise<void>
}

/** The in-process network used when no relay is available. */
export function loopbackDemoNetwork(): DemoNetwork {
  const net = loopbackNetwork({ seed: 1 })
  return {
    describe: 'in-process loopback network (seed 1)',
    transport: (name) => net.transport({ name }),
    settle: async (devices) => {
      for (let i = 0; i < 3; i++) {
        await Promise.all(devices.map((d) => d.flush()))
        await net.settle()
      }
    },
    close: async () => net.destroy(),
  }
}

/** Run the demo; `print` receives each output line. Returns the process exit code. */
export async function runDemo(network: DemoNetwork = loopbackDemoNetwork(), print: (line: string) => void = console.log): Promise<number> {
  print(`contextsync demo — four devices of one account, syncing through the ${network.describe}`)
  const account = await createAccount()
  const open = (kind: 'phone' | 'glasses' | 'car' | 'pc', name: string) =>
    ContextSync.open({ account, device: { kind, name }, storage: memoryStorage(), transports: [network.transport(kind)] })
  const phone = await open('phone', "Ana's phone")
  const glasses = await open('glasses', "Ana's glasses")
  const car = await open('car', "Ana's car")
  const pc = await open('pc', "Ana's PC")
  const devices = [phone, glasses, car, pc]
  try {
    print('')
    print('1. The phone remembers a few things.')
    await phone.memory.remember({ text: 'Prefers oat milk in coffee', kind: 'preference', tags: ['food', 'coffee'] })
    await phone.memory.remember({ text: 'Cycles to work along the river path', kind: 'fact', tags: ['commute'] })
    await phone.memory.remember({ text: 'Dentist appointment on Friday at 9:00', kind: 'event', scope: 'health', tags: ['appointments'] })
    await network.settle(devices)

    print('2. On the glasses, while cycling, Ana starts asking.')
    const session = glasses.sessions.start({ scope: 'personal', title: 'Coffee on the way' })
    await session.append({ role: 'user', text: 'Where can I get a coffee on my way to work?' })
    await network.settle(devices)

    print('3. In the car she continues the same conversation.')
    await car.sessions.open(session.id).append({ role: 'user', text: 'Actually I am driving today — somewhere with parking.' })
    await glasses.memory.remember({ text: 'Sometimes drives to work', kind: 'fact', tags: ['commute'] })
    await network.settle(devices)

    print('4. The PC assistant streams the answer token by token.')
    const answer = pc.sessions.open(session.id).stream({ role: 'assistant' })
    const oatMilk = pc.memory.recall({ text: 'coffee milk', limit: 1 })[0]
    for (const token of ['Try ', 'Riverside ', 'Roasters ', '— ', 'free ', 'parking, ', 'and ', 'they ', 'have ']) answer.write(token)
    answer.write(oatMilk ? 'oat milk.' : 'good coffee.')
    await answer.end()
    await network.settle(devices)

    print('')
    print('What each device sees:')
    for (const dev of devices) {
      const memories = dev.memory.list()
      const s = dev.sessions.get(session.id)
      print(`  ${dev.name.padEnd(14)} ${dev.kind.padEnd(8)} ${String(memories.length).padStart(2)} memories, session "${s?.title}" with ${s?.turns.length ?? 0} turns`)
    }
    print('')
    print(`The conversation, as the glasses show it:`)
    for (const turn of glasses.sessions.get(session.id)?.turns ?? []) {
      const from = devices.find((d) => d.deviceId === turn.deviceId)?.kind ?? 'unknown'
      print(`  [${turn.role} via ${from}] ${turn.text}`)
    }
    print('')
    print(`Recall on the car for "commute": ${car.memory.recall({ text: 'commute', limit: 3 }).map((m) => m.text).join(' | ')}`)
    const converged = devices.every((d) => JSON.stringify(d.sessions.get(session.id)) === JSON.stringify(phone.sessions.get(session.id)))
    const sameMemories = devices.every((d) => d.memory.list().length === phone.memory.list().length)
    print('')
    print(converged && sameMemories ? 'All four devices agree.' : 'Devices did not converge!')
    return converged && sameMemories ? 0 : 1
  } finally {
    await Promise.all(devices.map((d) => d.close()))
    await network.close()
  }
}
