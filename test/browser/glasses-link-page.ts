/**
 * The glasses as a web page on the real runtime: `openGlasses` (`contextsync/glasses`) on
 * IndexedDB, pairing over the relay with the browser's WebSocket, then syncing over a link whose
 * channel is another WebSocket standing in for the BLE characteristic pair (the Node side frames
 * it to the MTU and caps its throughput). Bundled for `platform: 'browser'` by
 * test/browser/glasses-link.test.ts, which drives it through `window.glassesLink`.
 */
import { plainKeys } from '../../src/index.js'
import type { LinkChannel } from '../../src/entries/link.js'
import { openGlasses, type Glasses } from '../../adapters/glasses/index.js'
import { GLASSES_LINK_DB, type GlassesLinkApi, type PageTurn } from './glasses-link-api.js'

let glasses: Glasses | undefined
let socket: WebSocket | undefined
let problems: string[] = []
/** sessionId/turnIndex → distinct texts seen while the turn streamed. */
const seen = new Map<string, string[]>()

function current(): Glasses {
  if (!glasses) throw new Error('glasses: not open')
  return glasses
}

function watch(g: Glasses): Glasses {
  problems = []
  g.device.on('rejected', (e) => problems.push(`rejected ${e.code} in ${e.scope}`))
  g.device.on('storage-error', (e) => problems.push(`storage-error ${e.error.code} in ${e.scope}`))
  g.device.sessions.on('change', () => {
    for (const s of g.device.sessions.list()) {
      s.turns.forEach((turn, i) => {
        if (turn.done) return
        const key = `${s.id}/${i}`
        const list = seen.get(key) ?? []
        if (list.at(-1) !== turn.text) list.push(turn.text)
        seen.set(key, list)
      })
    }
  })
  return g
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const api: GlassesLinkApi = {
  async join(code, relayUrl, name) {
    if (glasses) throw new Error('glasses: already open')
    // Plain key records: keys at rest in a browser (webCryptoKeys) have their own test.
    glasses = watch(
      await openGlasses({ dbName: GLASSES_LINK_DB, keys: plainKeys(), relayUrl, invite: code, name, maxBackoffTime: 400, timeoutMs: 20_000, power: { charging: true, batteryLevel: 1, screenOn: true } }),
    )
    return { deviceId: glasses.device.deviceId, scopes: glasses.device.scopes.available() }
  },

  async open(relayUrl) {
    if (glasses) throw new Error('glasses: already open')
    glasses = watch(await openGlasses({ dbName: GLASSES_LINK_DB, keys: plainKeys(), relayUrl, wifi: false, maxBackoffTime: 400, power: { charging: true, batteryLevel: 1, screenOn: true } }))
    return { deviceId: glasses.device.deviceId, scopes: glasses.device.scopes.available() }
  },

  async linkUp(url, mtu) {
    const g = current()
    const ws = new WebSocket(url)
    ws.binaryType = 'arraybuffer'
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve()
      ws.onerror = () => reject(new Error(`link socket to ${url} failed`))
    })
    socket = ws
    // A characteristic pair in a few lines: messages of at most `mtu` bytes each way.
    const channel: LinkChannel = {
      mtu,
      send: (bytes) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(bytes)
      },
      onMessage: (listener) => ws.addEventListener('message', (event) => listener(new Uint8Array(event.data as ArrayBuffer))),
      onClose: (listener) => ws.addEventListener('close', () => listener()),
      close: () => ws.close(),
    }
    g.connectLink(channel)
  },

  async linkDown() {
    const ws = socket
    socket = undefined
    if (!ws || ws.readyState === WebSocket.CLOSED) return
    const closed = new Promise<void>((r) => ws.addEventListener('close', () => r()))
    ws.close()
    await closed
  },

  async setWifi(up) {
    current().setNetwork({ wifi: up })
  },

  async paths() {
    const g = current()
    const out: Record<string, ReturnType<Glasses['pathOf']>> = {}
    for (const scope of g.device.scopes.available()) if (scope !== 'local') out[scope] = g.pathOf(g.device.roomId(scope))
    return out
  },

  async remember(text) {
    return (await current().device.memory.remember({ text })).id
  },

  async list() {
    return current().device.memory.list().map((m) => ({ id: m.id, text: m.text, scope: m.scope }))
  },

  async converse(title, chunks, gapMs) {
    const session = current().device.sessions.start({ title })
    const turn = session.stream({ role: 'user' })
    for (const chunk of chunks) {
      turn.write(chunk)
      await sleep(gapMs)
    }
    await turn.end()
    return session.id
  },

  async turns(sessionId) {
    return (current().device.sessions.get(sessionId)?.turns ?? []).map((t): PageTurn => ({ role: t.role, text: t.text, done: t.done, deviceId: t.deviceId }))
  },

  async seenWhileStreaming(sessionId, turnIndex) {
    return [...(seen.get(`${sessionId}/${turnIndex}`) ?? [])]
  },

  async problems() {
    return [...problems]
  },

  async close() {
    await api.linkDown()
    await glasses?.close()
    glasses = undefined
  },
}

window.glassesLink = api
