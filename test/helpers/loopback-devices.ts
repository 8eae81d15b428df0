/**
 * The shared fixture for tests that run devices of one account on a loopback network: it creates
 * the account and the network, opens the devices (always `kinds` first, then options), waits for
 * them to converge, and closes every device it opened and destroys the network when the test
 * ends — no `afterEach` to copy into each file.
 */
import { onTestFinished } from 'vitest'
import {
  createAccount,
  loopbackNetwork,
  type Account,
  type ContextSync,
  type DeviceKind,
  type LoopbackNetwork,
  type LoopbackOptions,
  type StorageAdapter,
} from '../../src/index.js'
import { converge, openDevice, type TestDevice } from './devices.js'

/** What {@link loopbackDevices} opened, and a way to open more on the same network. */
export interface LoopbackDevices {
  account: Account
  net: LoopbackNetwork
  /** The devices opened for `kinds`, in that order. */
  devs: TestDevice[]
  /** Their `ContextSync` objects. */
  all: ContextSync[]
  /** Open one more device of the account on the network; it is closed with the others. */
  open(kind: DeviceKind, storage?: StorageAdapter, options?: Partial<Parameters<typeof ContextSync.open>[0]>): Promise<TestDevice>
  /** Close `dev` when the test ends too (a device joined or reopened by the test itself). */
  track<T extends ContextSync>(dev: T): T
  /** Flush every device given (default: all opened so far) and settle the network. */
  converge(devices?: ContextSync[]): Promise<void>
}

/** Options of {@link loopbackDevices}: the network's (`seed`, `layout`, `faults`) and the account. */
export interface LoopbackDevicesOptions extends LoopbackOptions {
  /** The account (default: a new one). */
  account?: Account
  /** Converge after opening (default true). */
  converge?: boolean
}

/**
 * Open `kinds` as devices of one account on a new loopback network; everything is torn down when
 * the current test finishes (call it inside a test).
 */
export async function loopbackDevices(kinds: readonly DeviceKind[], options: LoopbackDevicesOptions = {}): Promise<LoopbackDevices> {
  const { account: given, converge: settle = true, ...network } = options
  const account = given ?? (await createAccount())
  const net = loopbackNetwork(network)
  const tracked: ContextSync[] = []
  onTestFinished(async () => {
    await Promise.all(tracked.splice(0).map((dev) => dev.close()))
    net.destroy()
  })
  const track = <T extends ContextSync>(dev: T): T => {
    tracked.push(dev)
    return dev
  }
  const open = async (kind: DeviceKind, storage?: StorageAdapter, more?: Partial<Parameters<typeof ContextSync.open>[0]>): Promise<TestDevice> => {
    const device = await openDevice(account, net, kind, storage, more)
    track(device.dev)
    return device
  }
  const devs: TestDevice[] = []
  for (const kind of kinds) devs.push(await open(kind))
  const all = devs.map((d) => d.dev)
  const fleet: LoopbackDevices = {
    account,
    net,
    devs,
    all,
    open,
    track,
    converge: (devices = [...tracked]) => converge(devices, net),
  }
  if (settle && all.length > 0) await fleet.converge(all)
  return fleet
}
