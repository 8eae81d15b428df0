/**
 * The client side of part 2 of bench/relay.ts, in its own process so that the bench process's
 * memory and CPU are the server's: raw `ws` sockets speaking the y-protocols sync handshake, then
 * fan-out bursts on command. {@link ClientProcess} forks this module and talks to it over IPC.
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'

const CHILD_ENV = 'CONTEXTSYNC_BENCH_CHILD'

/** What the bench process asks the client process to do. */
export type ChildCommand =
  | { type: 'open'; url: string; rooms: string[] }
  | { type: 'fanout'; groups: Array<{ writer: number; readers: number[] }>; k: number }
  | { type: 'close' }

/** The client process's answer to a {@link ChildCommand}. */
export type ChildReply =
  | { type: 'opened'; ms: number; failed: number }
  | { type: 'fanned'; ms: number; delivered: number; expected: number }
  | { type: 'closed' }
  | { type: 'error'; message: string }

/** The forked client process: raw ws sockets doing the y-protocols handshake, then fan-out. */
async function childMain(): Promise<void> {
  const empty = new Y.Doc()
  const frame = (write: (e: encoding.Encoder) => void) => {
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, 0)
    write(e)
    return encoding.toUint8Array(e)
  }
  const step1 = frame((e) => syncProtocol.writeSyncStep1(e, empty))
  const step2 = frame((e) => syncProtocol.writeSyncStep2(e, empty))
  interface Conn {
    ws: WebSocket
    updates: number
    ready: boolean
    reader: boolean
  }
  let conns: Conn[] = []
  let onUpdate: ((conn: Conn) => void) | undefined
  const reply = (m: ChildReply) => process.send!(m)

  const open = async (url: string, rooms: string[]): Promise<void> => {
    const start = performance.now()
    let failed = 0
    const CONCURRENCY = 64
    let next = 0
    const openOne = (room: string) =>
      new Promise<void>((resolve) => {
        const ws = new WebSocket(`${url}/${encodeURIComponent(room)}`, { perMessageDeflate: false })
        const conn: Conn = { ws, updates: 0, ready: false, reader: false }
        conns.push(conn)
        const timer = setTimeout(() => {
          failed++
          resolve()
        }, 20_000)
        ws.binaryType = 'nodebuffer'
        ws.on('open', () => ws.send(step1))
        ws.on('message', (data: Buffer) => {
          if (data[0] !== 0) return
          if (data[1] === 2) {
            conn.updates++
            onUpdate?.(conn)
          } else if (data[1] === 0) ws.send(step2)
          else if (data[1] === 1 && !conn.ready) {
            conn.ready = true
            clearTimeout(timer)
            resolve()
          }
        })
        ws.on('error', () => undefined)
        ws.on('close', () => {
          if (!conn.ready) {
            clearTimeout(timer)
            failed++
            resolve()
          }
        })
      })
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, rooms.length) }, async () => {
        while (next < rooms.length) await openOne(rooms[next++]!)
      }),
    )
    reply({ type: 'opened', ms: performance.now() - start, failed })
  }

  const fanout = async (groups: Array<{ writer: number; readers: number[] }>, k: number): Promise<void> => {
    // Precompute each writer's k updates (one small map entry each) before the clock starts.
    const frames = groups.map(() => [] as Uint8Array[])
    groups.forEach((_, g) => {
      const doc = new Y.Doc()
      doc.on('update', (u: Uint8Array) => frames[g]!.push(frame((e) => syncProtocol.writeUpdate(e, u))))
      const map = doc.getMap<string>('m')
      for (let j = 0; j < k; j++) map.set(`k${j}`, `${'x'.repeat(64)}${j}`)
      doc.destroy()
    })
    for (const c of conns) {
      c.updates = 0
      c.reader = false
    }
    for (const g of groups) for (const r of g.readers) conns[r]!.reader = true
    const expected = groups.reduce((n, g) => n + g.readers.length, 0) * k
    let delivered = 0
    const start = performance.now()
    const done = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 60_000)
      onUpdate = (conn) => {
        if (conn.reader && conn.updates <= k && ++delivered >= expected) {
          clearTimeout(timer)
          resolve(true)
        }
      }
    })
    // Round-robin over writers so rooms progress together.
    for (let j = 0; j < k; j++) for (let g = 0; g < groups.length; g++) conns[groups[g]!.writer]!.ws.send(frames[g]![j]!)
    await done
    const ms = performance.now() - start
    onUpdate = undefined
    reply({ type: 'fanned', ms, delivered, expected })
  }

  const closeAll = async (): Promise<void> => {
    await Promise.all(
      conns.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.ws.readyState === WebSocket.CLOSED) return resolve()
            const timer = setTimeout(() => {
              c.ws.terminate()
              resolve()
            }, 3_000)
            c.ws.once('close', () => {
              clearTimeout(timer)
              resolve()
            })
            c.ws.close()
          }),
      ),
    )
    conns = []
    reply({ type: 'closed' })
  }

  process.on('message', (m: ChildCommand) => {
    const run = m.type === 'open' ? open(m.url, m.rooms) : m.type === 'fanout' ? fanout(m.groups, m.k) : closeAll()
    run.catch((error: unknown) => reply({ type: 'error', message: error instanceof Error ? error.message : String(error) }))
  })
  process.on('disconnect', () => process.exit(0))
}

/** The forked client process, seen from the bench process: one request at a time. */
export class ClientProcess {
  private readonly child: ChildProcess
  private pending: ((m: ChildReply) => void) | undefined

  constructor() {
    this.child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, [CHILD_ENV]: 'relay-clients' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.child.on('message', (m: ChildReply) => {
      const p = this.pending
      this.pending = undefined
      p?.(m)
    })
  }

  request<T extends ChildReply['type']>(command: ChildCommand, expect: T, timeoutMs: number): Promise<Extract<ChildReply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client process: no '${expect}' within ${timeoutMs} ms`)), timeoutMs)
      this.pending = (m) => {
        clearTimeout(timer)
        if (m.type === 'error') reject(new Error(`client process: ${m.message}`))
        else if (m.type !== expect) reject(new Error(`client process: expected ${expect}, got ${m.type}`))
        else resolve(m as Extract<ChildReply, { type: T }>)
      }
      this.child.send(command)
    })
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()))
    this.child.disconnect()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3_000)
    await exited
    clearTimeout(timer)
  }
}

if (process.env[CHILD_ENV] === 'relay-clients') void childMain()
