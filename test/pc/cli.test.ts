/**
 * The device commands of the real `contextsync` process, in a fresh per-user home, against a relay
 * on 127.0.0.1 and a phone of the same account: join with the phone's invite (both show the same
 * six digits), memory add / recall --json / show, sessions tail printing a turn while the phone
 * streams it, init + devices invite + devices revoke from an owner PC, status, and bad arguments
 * (exit 2, one line).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { describe, expect, it, onTestFinished } from 'vitest'
import { ContextSync, createAccount, memoryStorage, plainKeys } from '../../src/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import { closeRelays, startRelay } from '../relay/helpers.js'
import { background, pcHome, pcWorld, runCli, until } from '../helpers/pc.js'

async function phoneOnRelay(url: string, account?: Awaited<ReturnType<typeof createAccount>>): Promise<{ phone?: ContextSync; transport: ReturnType<typeof websocketTransport> }> {
  const transport = websocketTransport({ url, WebSocketPolyfill: WebSocket, maxBackoffTime: 300 })
  onTestFinished(() => transport.close())
  if (!account) return { transport }
  const phone = await ContextSync.open({ account, device: { kind: 'phone', name: 'Phone' }, storage: memoryStorage(), transports: [transport], keys: plainKeys() })
  onTestFinished(() => phone.close())
  return { phone, transport }
}

describe('contextsync device commands', () => {
  it('join shows the same six digits as the phone; memory add, recall --json, show; sessions tail prints a streamed turn; status', async () => {
    const relay = await startRelay()
    onTestFinished(() => closeRelays())
    const { phone } = await phoneOnRelay(relay.url, await createAccount())
    const home = pcHome()
    let phoneSas = ''
    const invite = await phone!.devices.invite({ kind: 'pc', confirm: ({ sas }) => ((phoneSas = sas), true) })
    const joined = await runCli(home, ['join', invite.code, '--relay', relay.url, '--yes', '--json'])
    expect(joined.code, joined.stderr).toBe(0)
    const result = JSON.parse(joined.stdout) as { sas: string; deviceId: string; scopes: string[]; synced: boolean; rooms: number; updates: number; bytes: number }
    expect(result.sas).toMatch(/^\d{3} ?\d{3}$/)
    // It waited for the initial sync of personal and work (the phone wrote nothing there yet).
    expect(result).toMatchObject({ synced: true, rooms: 2, updates: 0, bytes: 0 })
    expect(result.sas).toBe(phoneSas)
    expect(joined.stderr).toContain(`Pairing code on both screens: ${phoneSas}`)
    expect(result.scopes).toEqual(expect.arrayContaining(['personal', 'work']))
    await until(() => phone!.devices.list().some((d) => d.deviceId === result.deviceId && d.kind === 'pc'), 'the PC on the phone')

    const added = await runCli(home, ['memory', 'add', 'Prefers oat milk in coffee', '--kind', 'preference', '--tags', 'coffee,food', '--json'])
    expect(added.code, added.stderr).toBe(0)
    const memory = JSON.parse(added.stdout) as { id: string; scope: string; tags: string[] }
    expect(memory).toMatchObject({ scope: 'personal', tags: ['coffee', 'food'] })
    await until(() => phone!.memory.get(memory.id)?.text === 'Prefers oat milk in coffee', 'the CLI memory on the phone')
    await phone!.memory.remember({ text: 'Drinks coffee black on weekdays' })

    const recalled = await runCli(home, ['memory', 'recall', 'coffee', '--json'])
    expect(recalled.code, recalled.stderr).toBe(0)
    const hits = JSON.parse(recalled.stdout) as Array<{ id: string; text: string; score: number }>
    expect(hits.map((h) => h.text).sort()).toEqual(['Drinks coffee black on weekdays', 'Prefers oat milk in coffee'])
    expect(hits[0]!.score).toBeGreaterThanOrEqual(hits[1]!.score)
    const shown = await runCli(home, ['memory', 'show', memory.id])
    expect(shown.stdout).toMatch(/^Prefers oat milk in coffee\n/)
    const missing = await runCli(home, ['memory', 'show', 'nope'])
    expect(missing.code).toBe(3)
    expect(missing.stderr.trim().split('\n')).toHaveLength(1)

    // sessions tail prints the phone's turns as they stream.
    const session = phone!.sessions.start({ scope: 'personal', title: 'Coffee' })
    await session.append({ role: 'user', text: 'Where is good coffee near the office?' })
    const tail = background(home, ['sessions', 'tail', session.id])
    await until(() => tail.stdout().includes('user: Where is good coffee near the office?\n'), `the first turn in tail (stderr: ${tail.stderr()})`)
    const stream = phone!.sessions.open(session.id).stream({ role: 'assistant' })
    stream.write('Try the roastery ')
    await until(() => tail.stdout().includes('assistant: Try the roastery '), 'the streamed part in tail')
    stream.write('on Main Street.')
    await stream.end()
    await until(() => tail.stdout().includes('assistant: Try the roastery on Main Street.\n'), 'the finished turn in tail')
    expect(await tail.stop()).toBe(0)

    const status = await runCli(home, ['status', '--json'])
    expect(status.code, status.stderr).toBe(0)
    const report = JSON.parse(status.stdout) as { owner: boolean; scopes: Array<{ scope: string; connection: string; peers: number }> }
    expect(report.owner).toBe(false)
    expect(report.scopes.find((s) => s.scope === 'personal')).toMatchObject({ connection: 'synced' })
  })

  it('init makes an owner PC that invites a phone and revokes it', async () => {
    const relay = await startRelay()
    onTestFinished(() => closeRelays())
    const home = pcHome()
    const init = await runCli(home, ['init', '--relay', relay.url, '--name', 'Desk'])
    expect(init.code, init.stderr).toBe(0)
    expect(init.stdout).toMatch(/Recovery code — write it down now/)

    const inviting = background(home, ['devices', 'invite', '--kind', 'phone', '--yes', '--json'])
    const code = await until(() => /"code":"([^"]+)"/.exec(inviting.stdout())?.[1], `the invite code (stderr: ${inviting.stderr()})`)
    const { transport } = await phoneOnRelay(relay.url)
    let phoneSas = ''
    const phone = await ContextSync.join({ invite: code, device: { kind: 'phone', name: 'Phone' }, storage: memoryStorage(), transports: [transport], keys: plainKeys(), confirmSas: (sas) => ((phoneSas = sas), true) })
    onTestFinished(() => phone.close())
    await until(() => inviting.stdout().includes('"joined"'), 'the invite to finish')
    expect(inviting.stdout()).toContain(`"sas":"${phoneSas}"`)
    // It exits by itself once the phone was admitted.
    expect(await inviting.exited).toBe(0)

    const listed = await runCli(home, ['devices', 'list', '--json'])
    const devices = JSON.parse(listed.stdout) as Array<{ deviceId: string; kind: string; role: string }>
    expect(devices.map((d) => d.kind).sort()).toEqual(['pc', 'phone'])

    let revoked = false
    phone.on('revoked', () => (revoked = true))
    const revoke = await runCli(home, ['devices', 'revoke', phone.deviceId])
    expect(revoke.code, revoke.stderr).toBe(0)
    await until(() => revoked, 'the revocation on the phone')
    const unknown = await runCli(home, ['devices', 'revoke', 'f'.repeat(32)])
    expect(unknown.code).toBe(3)
  })

  it('memory forget reaches the phone; export and import round-trip a scope; sync prints what arrives', async () => {
    const { phone, home } = await pcWorld()
    const keep = await phone.memory.remember({ text: 'Books window seats on trains', tags: ['travel'] })
    const gone = await phone.memory.remember({ text: 'Old gym membership number' })
    const forgot = await runCli(home, ['memory', 'forget', gone.id, '--json'])
    expect(forgot.code, forgot.stderr).toBe(0)
    expect(JSON.parse(forgot.stdout)).toEqual({ forgotten: true, id: gone.id })
    await until(() => phone.memory.get(gone.id) === undefined, 'the forget on the phone')

    const file = join(home.root, 'personal.jsonl')
    const exported = await runCli(home, ['memory', 'export', '--scope', 'personal', '--out', file])
    expect(exported.code, exported.stderr).toBe(0)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(readFileSync(file, 'utf8')).toContain('Books window seats on trains')
    expect(readFileSync(file, 'utf8')).not.toContain('Old gym membership number')
    await phone.memory.forget(keep.id)
    await until(async () => !(await runCli(home, ['memory', 'list', '--json'])).stdout.includes(keep.id), 'the phone forget on the PC')
    // With only some scopes exposed, the file's own scopes could be hidden ones: the target must be named.
    const narrowed = await runCli(home, ['memory', 'import', file, '--scopes', 'personal'])
    expect(narrowed.code).toBe(2)
    expect(narrowed.stderr).toMatch(/needs --scope/)
    const imported = await runCli(home, ['memory', 'import', file, '--json'])
    expect(imported.code, imported.stderr).toBe(0)
    expect(JSON.parse(imported.stdout)).toMatchObject({ imported: 1, rejected: [] })
    await until(() => phone.memory.get(keep.id)?.text === 'Books window seats on trains', 'the imported memory on the phone')

    const daemon = background(home, ['sync', '--json'])
    await until(() => daemon.stdout().includes('"event":"synced"'), `the daemon in sync (stderr: ${daemon.stderr()})`)
    const added = await phone.memory.remember({ text: 'Parks on level 3' })
    await until(() => daemon.stdout().includes(`"event":"memory","type":"added","id":"${added.id}"`), 'the new memory in the daemon output')
    expect(await daemon.stop()).toBe(0)
    for (const line of daemon.stdout().trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow()
  })

  it('status shows per scope what waits for the relay: pending while the relay is away, nothing once synced', async () => {
    const relayData = mkdtempSync(join(tmpdir(), 'contextsync-pc-relay-'))
    onTestFinished(() => rmSync(relayData, { recursive: true, force: true }))
    const { phone, home, relay } = await pcWorld({ relay: { dataDir: relayData } })
    const port = relay.port
    await relay.close()

    // Written with the relay away: the command goes on with what the PC has, and leaves it pending.
    const added = await runCli(home, ['memory', 'add', 'Parks on level 3 at the office', '--wait', '1', '--json'])
    expect(added.code, added.stderr).toBe(0)
    expect(added.stderr).toMatch(/the relay did not answer/)
    const { id } = JSON.parse(added.stdout) as { id: string }

    // Another process sees it: the relay is still away.
    const away = await runCli(home, ['status', '--json', '--wait', '1'])
    expect(away.code).toBe(1)
    const awayReport = JSON.parse(away.stdout) as { pending: { count: number; bytes: number }; scopes: Array<{ scope: string; connection: string; pending: { count: number; bytes: number } }> }
    const personal = awayReport.scopes.find((s) => s.scope === 'personal')!
    expect(personal.connection).not.toBe('synced')
    expect(personal.pending.count).toBeGreaterThan(0)
    expect(personal.pending.bytes).toBeGreaterThan(0)
    expect(awayReport.pending.count).toBeGreaterThanOrEqual(personal.pending.count)
    expect(awayReport.scopes.find((s) => s.scope === 'work')!.pending).toEqual({ count: 0, bytes: 0 })
    const text = await runCli(home, ['status', '--wait', '1'])
    expect(text.stdout).toMatch(new RegExp(`personal .* ${personal.pending.count} pending \\(\\d+(\\.\\d)? (B|KiB)\\)`))

    // The relay is back (same port, same store): status syncs, and nothing is pending any more.
    await startRelay({ dataDir: relayData, port })
    const back = await runCli(home, ['status', '--json'])
    expect(back.code, back.stderr).toBe(0)
    const backReport = JSON.parse(back.stdout) as typeof awayReport
    expect(backReport.pending).toEqual({ count: 0, bytes: 0 })
    expect(backReport.scopes.find((s) => s.scope === 'personal')).toMatchObject({ connection: 'synced', pending: { count: 0, bytes: 0 } })
    await until(() => phone.memory.get(id)?.text === 'Parks on level 3 at the office', 'the offline memory on the phone')
  })

  it('bad arguments exit 2 with one clear line', async () => {
    const home = pcHome()
    const cases: Array<[string[], RegExp]> = [
      [['memory', 'recall'], /missing argument/],
      [['memory', 'list', '--limit', 'many'], /invalid value for --limit: 'many'/],
      [['mcp', '--port', '70000'], /invalid value for --port/],
      [['mcp', '--scopes', 'Personal!'], /invalid value for --scopes/],
      [['sessions', 'list', '--frob'], /Unknown option '--frob'/],
      [['join'], /missing argument/],
      [['join', 'ABCD', '--relay', 'http://x'], /invalid value for --relay/],
      [['devices', 'explode'], /unknown command 'devices explode'/],
    ]
    for (const [args, message] of cases) {
      const run = await runCli(home, args)
      expect(run.code, args.join(' ')).toBe(2)
      const lines = run.stderr.trim().split('\n')
      expect(lines[0], args.join(' ')).toMatch(message)
      // The one line, then where to find help.
      expect(lines.slice(1), args.join(' ')).toEqual([expect.stringMatching(/--help/)])
    }
  })
})
