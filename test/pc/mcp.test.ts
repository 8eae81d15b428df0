/**
 * `contextsync mcp` as desktop assistants use it: the MCP SDK's own `Client` spawns the real
 * process over stdio, in a fresh per-user home, against a relay on 127.0.0.1, while the phone —
 * another device of the account, in a process of its own (test/fixtures/phone-process.ts) —
 * writes and reads through the relay.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { ResourceUpdatedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { mcpClient, until } from '../helpers/pc.js'
import { phoneWorld, stopPhoneProcesses } from '../helpers/phone-process.js'

afterEach(stopPhoneProcesses)

async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult
}

async function ok<T>(client: Client, name: string, args: Record<string, unknown> = {}): Promise<T> {
  const result = await call(client, name, args)
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content)}`)
  return result.structuredContent as T
}

function errorText(result: CallToolResult): string {
  expect(result.isError).toBe(true)
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join(' ')
}

interface Memory {
  id: string
  text: string
  scope: string
}

describe('contextsync mcp (stdio)', () => {
  it('remembers, recalls, reads what the phone streams, is notified of it, and forget reaches the phone', async () => {
    const { phone, home } = await phoneWorld()
    const { memory: fromPhone } = await phone.call('remember', { text: 'Allergic to cats', kind: 'fact' })
    const { client, stderr } = await mcpClient(home)

    const tools = (await client.listTools()).tools
    expect(tools.map((t) => t.name).sort()).toEqual(
      ['append_turn', 'forget', 'hand_off_session', 'list_memories', 'list_sessions', 'read_session', 'recall', 'remember', 'show_memory'].sort(),
    )
    for (const tool of tools) {
      expect(tool.outputSchema, tool.name).toBeDefined()
      expect(typeof tool.annotations?.readOnlyHint, tool.name).toBe('boolean')
      expect(typeof tool.annotations?.destructiveHint, tool.name).toBe('boolean')
      expect(typeof tool.annotations?.idempotentHint, tool.name).toBe('boolean')
    }
    expect(tools.find((t) => t.name === 'forget')!.annotations).toMatchObject({ destructiveHint: true, readOnlyHint: false })
    expect(tools.find((t) => t.name === 'recall')!.annotations).toMatchObject({ readOnlyHint: true })
    const templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate).sort()
    expect(templates).toEqual(['contextsync://memories/{id}', 'contextsync://sessions/{id}'])

    // The phone's memory synced into the PC process; it is listed as a resource.
    await until(async () => (await client.listResources()).resources.some((r) => r.uri === `contextsync://memories/${fromPhone.id}`), 'the phone memory as a resource')

    const { memory } = await ok<{ memory: Memory }>(client, 'remember', { text: 'Prefers aisle seats on long flights', kind: 'preference', tags: ['travel'] })
    expect(memory.scope).toBe('personal')
    const onPhone = await until(async () => (await phone.call('recall', { text: 'aisle seat' })).memories.find((m) => m.id === memory.id), 'the PC memory recalled on the phone')
    expect(onPhone).toMatchObject({ text: 'Prefers aisle seats on long flights', scope: 'personal' })
    const recalled = await ok<{ memories: Array<Memory & { score: number }> }>(client, 'recall', { query: 'aisle seat' })
    expect(recalled.memories[0]!.id).toBe(memory.id)

    // The phone starts a conversation and streams an answer; the PC reads it and is notified.
    const { sessionId } = await phone.call('start-session', { scope: 'personal', title: 'Trip to Lisbon' })
    await phone.call('append-turn', { sessionId, role: 'user', text: 'Find me a flight on Friday' })
    const uri = `contextsync://sessions/${sessionId}`
    await until(async () => (await call(client, 'read_session', { id: sessionId })).isError !== true, 'the session on the PC')
    const updates: string[] = []
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri))
    await client.subscribeResource({ uri })
    const { turnId } = await phone.call('stream-turn', { sessionId, role: 'assistant' })
    await phone.call('stream-write', { turnId, text: 'Looking at ' })
    await until(() => updates.includes(uri), 'a resource-updated notification for the streamed turn')
    const partial = await ok<{ session: { turns: Array<{ role: string; text: string; done: boolean }> } }>(client, 'read_session', { id: sessionId })
    expect(partial.session.turns[0]).toMatchObject({ role: 'user', text: 'Find me a flight on Friday', done: true })
    await phone.call('stream-write', { turnId, text: 'Friday flights…' })
    expect((await phone.call('stream-end', { turnId })).text).toBe('Looking at Friday flights…')
    const read = await until(async () => {
      const r = await ok<{ session: { turns: Array<{ role: string; text: string; done: boolean }> } }>(client, 'read_session', { id: sessionId })
      return r.session.turns[1]?.done === true ? r : undefined
    }, 'the finished turn')
    expect(read.session.turns[1]).toMatchObject({ role: 'assistant', text: 'Looking at Friday flights…' })
    const resource = await client.readResource({ uri })
    expect(JSON.parse((resource.contents[0] as { text: string }).text).turns).toHaveLength(2)

    // The PC appends a turn; the phone sees it.
    await ok(client, 'append_turn', { sessionId, role: 'user', text: 'The 9 am one, please' })
    await until(async () => (await phone.call('session', { id: sessionId })).session?.turns.some((t) => t.text === 'The 9 am one, please'), 'the PC turn on the phone')

    // forget through MCP reaches the phone.
    const forgotten = await ok<{ forgotten: boolean }>(client, 'forget', { id: fromPhone.id })
    expect(forgotten.forgotten).toBe(true)
    await phone.event('memory', (e) => e.id === fromPhone.id && e.type === 'removed' && e.origin === 'remote', 'the phone reporting the forgotten memory gone')
    expect((await phone.call('get', { id: fromPhone.id })).memory).toBeNull()
    expect((await ok<{ forgotten: boolean }>(client, 'forget', { id: fromPhone.id })).forgotten).toBe(false)
    expect(stderr()).toContain('serving scopes personal, work')
  })

  it('append_turn starts a conversation that reaches the phone, and hand_off_session makes the phone its active device', async () => {
    const { phone, phoneDeviceId, home, pcDeviceId } = await phoneWorld()
    const { client } = await mcpClient(home)
    const started = await ok<{ sessionId: string; turnId: string }>(client, 'append_turn', { role: 'user', text: 'Plan a weekend in Porto', title: 'Porto' })
    const onPhone = await phone.call('wait-session', { id: started.sessionId, timeoutMs: 20_000 })
    expect(onPhone.session).toMatchObject({ title: 'Porto', scope: 'personal' })
    await phone.call('accept-handoffs', {})
    const offered = await ok<{ offerId: string; status: string }>(client, 'hand_off_session', { sessionId: started.sessionId, to: 'phone' })
    expect(offered.status).toBe('pending')
    await phone.event('handoff-accepted', (e) => e.offerId === offered.offerId && e.sessionId === started.sessionId, 'the phone accepting the handoff')
    await until(async () => (await ok<{ session: { activeDevice: string } }>(client, 'read_session', { id: started.sessionId })).session.activeDevice === phoneDeviceId, 'the phone as the active device on the PC')
    expect((await phone.call('session', { id: started.sessionId })).session!.turns[0]!.deviceId).toBe(pcDeviceId)
    expect(errorText(await call(client, 'append_turn', { sessionId: 'no-such-session', role: 'user', text: 'x' }))).toMatch(/no session/)
  })

  it('with --scopes personal, never reveals work or health items, and naming them is a clear tool error', async () => {
    const { phone, home } = await phoneWorld()
    const { memory: personal } = await phone.call('remember', { text: 'Marker personal coffee order', scope: 'personal' })
    const { memory: work } = await phone.call('remember', { text: 'Marker work quarterly numbers', scope: 'work' })
    await phone.call('remember', { text: 'Marker health blood pressure', scope: 'health' })
    const { sessionId: workSessionId } = await phone.call('start-session', { scope: 'work', title: 'Budget review' })
    await phone.call('append-turn', { sessionId: workSessionId, role: 'user', text: 'Marker work budget' })

    // With the default scopes the work memory does reach the PC (so its absence below is the filter's doing).
    {
      const { client } = await mcpClient(home)
      await until(async () => (await ok<{ memories: Memory[] }>(client, 'recall', { query: 'marker quarterly', scope: 'work' })).memories.length > 0, 'the work memory on the PC')
      await client.close()
    }

    const { client } = await mcpClient(home, ['--scopes', 'personal'])
    await until(async () => (await ok<{ memories: Memory[] }>(client, 'list_memories')).memories.some((m) => m.id === personal.id), 'the personal memory')
    const listed = await ok<{ memories: Memory[] }>(client, 'list_memories')
    expect(listed.memories.every((m) => m.scope === 'personal')).toBe(true)
    const recalled = await ok<{ memories: Memory[] }>(client, 'recall', { query: 'marker', limit: 50 })
    expect(recalled.memories.map((m) => m.id)).toEqual([personal.id])
    const sessions = await ok<{ sessions: Array<{ id: string }> }>(client, 'list_sessions')
    expect(sessions.sessions.map((s) => s.id)).not.toContain(workSessionId)
    const resources = (await client.listResources()).resources.map((r) => r.uri)
    expect(resources).toContain(`contextsync://memories/${personal.id}`)
    expect(resources.some((u) => u.includes(work.id) || u.includes(workSessionId))).toBe(false)

    expect(errorText(await call(client, 'recall', { query: 'marker', scope: 'work' }))).toMatch(/scope 'work' is not exposed/)
    expect(errorText(await call(client, 'remember', { text: 'x', scope: 'health' }))).toMatch(/does not hold scope 'health'/)
    expect(errorText(await call(client, 'show_memory', { id: work.id }))).toMatch(/no memory/)
    expect(errorText(await call(client, 'read_session', { id: workSessionId }))).toMatch(/no session/)
    expect(errorText(await call(client, 'forget', { id: work.id }))).toMatch(/no memory/)
    await expect(client.readResource({ uri: `contextsync://memories/${work.id}` })).rejects.toThrow(/no resource/)
    // The refused forget changed nothing.
    expect((await phone.call('get', { id: work.id })).memory?.text).toBe('Marker work quarterly numbers')
    const all = JSON.stringify([listed, recalled, sessions, resources])
    expect(all).not.toMatch(/quarterly|blood pressure|budget/i)
  })
})
