/**
 * `contextsync mcp --http`: the MCP SDK's own client over Streamable HTTP to the real process on
 * 127.0.0.1, with the phone in a process of its own (test/fixtures/phone-process.ts) on the same
 * relay; requests without the bearer token, with a wrong one, with a foreign Host (DNS
 * rebinding) or a foreign Origin are refused before the MCP layer sees them.
 */
import { request } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { ResourceUpdatedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { onTestFinished } from 'vitest'
import { mcpHttpProcess, until } from '../helpers/pc.js'
import { phoneWorld, stopPhoneProcesses } from '../helpers/phone-process.js'

afterEach(stopPhoneProcesses)

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'probe', version: '1' } },
})

/** POST an initialize with exactly these headers (node:http lets a test set Host). */
function post(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString('utf8')))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end(INITIALIZE)
  })
}

describe('contextsync mcp --http', () => {
  it('serves the SDK client with the bearer token, and refuses no token, a wrong one, a foreign Host or Origin', async () => {
    const { phone, home } = await phoneWorld()
    const { url, token } = await mcpHttpProcess(home, ['--scopes', 'personal'])
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/)

    const client = new Client({ name: 'contextsync-test', version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }))
    onTestFinished(() => client.close())
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('recall')
    const remembered = (await client.callTool({ name: 'remember', arguments: { text: 'Takes the 8:10 train to work' } })) as CallToolResult
    const id = (remembered.structuredContent as { memory: { id: string } }).memory.id
    const onPhone = await until(async () => (await phone.call('get', { id })).memory ?? undefined, 'the memory on the phone')
    expect(onPhone.text).toBe('Takes the 8:10 train to work')
    const recalled = (await client.callTool({ name: 'recall', arguments: { query: 'train' } })) as CallToolResult
    expect((recalled.structuredContent as { memories: Array<{ id: string }> }).memories[0]!.id).toBe(id)

    // Notifications reach an HTTP client too (on its standalone SSE stream).
    const updates: string[] = []
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri))
    await client.subscribeResource({ uri: `contextsync://memories/${id}` })
    await phone.call('update', { id, text: 'Takes the 8:40 train to work' })
    await until(() => updates.includes(`contextsync://memories/${id}`), 'a resource-updated notification over HTTP')

    const host = new URL(url).host
    const good = await post(url, { host, authorization: `Bearer ${token}` })
    expect(good.status).toBe(200)
    const none = await post(url, { host })
    expect(none.status).toBe(401)
    const wrong = await post(url, { host, authorization: `Bearer ${token.slice(0, -2)}xx` })
    expect(wrong.status).toBe(401)
    // DNS rebinding: the page's name resolves to 127.0.0.1, the browser sends its own Host — refused even with the token.
    const rebound = await post(url, { host: `attacker.example:${new URL(url).port}`, authorization: `Bearer ${token}` })
    expect(rebound.status).toBe(403)
    expect(rebound.body).toMatch(/Host/)
    const crossOrigin = await post(url, { host, origin: 'https://attacker.example', authorization: `Bearer ${token}` })
    expect(crossOrigin.status).toBe(403)
    const localOrigin = await post(url, { host, origin: `http://localhost:${new URL(url).port}`, authorization: `Bearer ${token}` })
    expect(localOrigin.status).toBe(200)
  })
})
