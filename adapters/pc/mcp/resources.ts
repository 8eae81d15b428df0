/**
 * The MCP resources of a PC — `contextsync://memories/{id}` and `contextsync://sessions/{id}` —
 * and their change notifications. A client subscribes to a URI (`resources/subscribe`); when the
 * memory or session changes — written here or synced in from another device — it gets
 * `notifications/resources/updated`; when memories or sessions are added or removed, every client
 * gets `notifications/resources/list_changed`. Only items of exposed scopes are listed, read or
 * notified.
 *
 * @module
 */
import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { ErrorCode, McpError, SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js'
import type { PcDevice } from '../open-pc.js'
import { memoryUri, memoryView, sessionUri, sessionView } from './shapes.js'

/** Most items a resource list names (newest first). */
const LIST_LIMIT = 500
/** Changes to one URI within this window produce one notification (a streamed turn changes it every 20 ms). */
const COALESCE_MS = 50

/** Register the resources of `pc` on `server`; returns a function that stops the notifications. */
export function registerResources(server: McpServer, pc: PcDevice, log: (message: string) => void): () => void {
  const memory = pc.sync.memory
  const sessions = pc.sync.sessions
  const exposed = (scope: string): boolean => pc.exposedScopes().includes(scope)
  const json = (uri: string, value: unknown) => ({ contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(value, null, 2) }] })
  const notFound = (uri: string) => new McpError(ErrorCode.InvalidParams, `no resource ${uri} here`)
  const idOf = (value: string | string[] | undefined): string => decodeURIComponent(Array.isArray(value) ? (value[0] ?? '') : (value ?? ''))

  server.registerResource(
    'memory',
    new ResourceTemplate('contextsync://memories/{id}', {
      list: () => ({
        resources: pc
          .exposedScopes()
          .flatMap((scope) => memory.list({ scope, limit: LIST_LIMIT }))
          .sort((a, b) => b.updatedAt - a.updatedAt)
          .slice(0, LIST_LIMIT)
          .map((item) => ({ uri: memoryUri(item.id), name: item.text.slice(0, 80), mimeType: 'application/json', description: `${item.kind} in ${item.scope}` })),
      }),
    }),
    { title: 'Memory', description: "One of the user's long-term memories", mimeType: 'application/json' },
    (uri, variables) => {
      const item = memory.get(idOf(variables.id))
      if (!item || !exposed(item.scope)) throw notFound(uri.href)
      return json(uri.href, memoryView(item))
    },
  )

  server.registerResource(
    'session',
    new ResourceTemplate('contextsync://sessions/{id}', {
      list: () => ({
        resources: pc
          .exposedScopes()
          .flatMap((scope) => sessions.list({ scope, limit: LIST_LIMIT }))
          .sort((a, b) => b.updatedAt - a.updatedAt)
          .slice(0, LIST_LIMIT)
          .map((s) => ({ uri: sessionUri(s.id), name: s.title || s.id, mimeType: 'application/json', description: `conversation in ${s.scope}, ${s.turns.length} turns` })),
      }),
    }),
    { title: 'Conversation', description: 'A conversation with its turns, as it syncs between devices', mimeType: 'application/json' },
    (uri, variables) => {
      const session = sessions.get(idOf(variables.id))
      if (!session || !exposed(session.scope)) throw notFound(uri.href)
      return json(uri.href, sessionView(session))
    },
  )

  // Subscriptions: any URI may be subscribed (a session another device just started may not be
  // here yet); notifications only ever fire for items of exposed scopes.
  const subscribed = new Set<string>()
  server.server.registerCapabilities({ resources: { subscribe: true, listChanged: true } })
  server.server.setRequestHandler(SubscribeRequestSchema, (request) => {
    subscribed.add(request.params.uri)
    return {}
  })
  server.server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
    subscribed.delete(request.params.uri)
    return {}
  })

  const pending = new Set<string>()
  let listChanged = false
  let timer: ReturnType<typeof setTimeout> | undefined
  const schedule = (): void => {
    timer ??= setTimeout(() => {
      timer = undefined
      if (!server.isConnected()) return
      for (const uri of pending) server.server.sendResourceUpdated({ uri }).catch((error: unknown) => log(`resource notification failed: ${String(error)}`))
      pending.clear()
      if (listChanged) server.sendResourceListChanged()
      listChanged = false
    }, COALESCE_MS)
  }
  const changed = (uri: string, scope: string, listChange: boolean): void => {
    if (!exposed(scope)) return
    if (subscribed.has(uri)) pending.add(uri)
    if (listChange) listChanged = true
    if (pending.size > 0 || listChanged) schedule()
  }
  const offMemory = memory.on('change', (event) => changed(memoryUri(event.id), event.scope, event.type !== 'updated'))
  const knownSessions = new Set(sessions.list().map((s) => s.id))
  const offSessions = sessions.on('change', (event) => {
    const added = !knownSessions.has(event.id)
    knownSessions.add(event.id)
    changed(sessionUri(event.id), event.scope, added)
  })
  return () => {
    offMemory()
    offSessions()
    if (timer) clearTimeout(timer)
  }
}
