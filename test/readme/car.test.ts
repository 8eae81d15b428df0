/**
 * The README's head unit example ("Head unit (`contextsync/car`)") as written, run with tsx
 * against a real relay on 127.0.0.1: only the relay URL changes, the invite code comes from a
 * phone in this process through `CONTEXTSYNC_INVITE` as the README says, and the package's
 * specifiers point at this tree's sources. The write made offline reaches the phone once the
 * host reports the network, the outbox and glance show what the comments promise, and the
 * process exits by itself.
 */
import { describe, expect, it } from 'vitest'
import { readmeScript, readmeWorld, runExample } from '../helpers/readme-example.js'

describe("the README's head unit example, as written", () => {
  const world = readmeWorld('contextsync-readme-car-')

  it('joins with the phone invite, queues the offline write, syncs it to the phone, glances, and exits', async () => {
    const { relay, phone, dir } = world()
    const invite = await phone.invite({ kind: 'car', confirmSas: () => true })
    const script = readmeScript('## Head unit (`contextsync/car`)', 1, relay.url)
    const result = await runExample(dir, script, { CONTEXTSYNC_INVITE: invite.code })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    // pending() while offline: the one location write, counted in all and per scope.
    expect(result.stdout).toMatch(/count: 1,[\s\S]*location: \{[^}]*count: 1/)
    // The glance and the profile list.
    expect(result.stdout).toContain('Find me a quiet route home')
    expect(result.stdout).toMatch(/id: 'alice'[\s\S]*name: 'Alice'/)
    // The write made offline reached the phone through the relay once the car was back online.
    const deadline = Date.now() + 10_000
    while (!phone.device.memory.list({ scope: 'location' }).some((m) => m.text === 'Parked on level 3') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(phone.device.memory.list({ scope: 'location' }).map((m) => m.text)).toContain('Parked on level 3')
  }, 60_000)
})
