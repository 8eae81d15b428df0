/**
 * Relay nodes as separate processes (`node --import tsx src/bin.ts relay --store … --redis …`),
 * a database per test, a TCP load balancer in front of them, and each node's /metrics parsed.
 * Every process, socket and database is released by {@link releaseNodes} (call it in afterEach).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import pg from 'pg'

const ROOT = join(import.meta.dirname, '..', '..')

/** A running relay node process. */
export interface RelayNode {
  url: string
  port: number
  child: ChildProcess
  /** The node's counters from /metrics (`contextsync_relay_…` names without the prefix). */
  metrics(): Promise<Record<string, number>>
  /** What the process logged to stderr so far. */
  stderr(): string
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>
}

const children: ChildProcess[] = []
const servers: Server[] = []
const sockets = new Set<Socket>()
const databases: Array<{ admin: string; name: string }> = []

/** Create an empty database for one test; returns its URL. */
export async function createDatabase(adminUrl: string): Promise<string> {
  const name = `cs_nodes_${randomBytes(5).toString('hex')}`
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end()
  }
  databases.push({ admin: adminUrl, name })
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** Start a relay node on a free port; resolves once it printed its URL. */
export async function startNode(args: string[], env: Record<string, string> = {}): Promise<RelayNode> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin.ts', 'relay', '--port', '0', '--log-level', 'warn', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const line = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.once('line', resolve)
    child.once('exit', (code) => reject(new Error(`relay node exited (${code}) before listening: ${stderr}`)))
  })
  const url = /listening on (ws:\/\/\S+)/.exec(line)?.[1]
  if (!url) throw new Error(`unexpected first line: ${line}`)
  const port = Number(new URL(url).port)
  return {
    url,
    port,
    child,
    stderr: () => stderr,
    async metrics() {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      const out: Record<string, number> = {}
      for (const m of text.matchAll(/^contextsync_relay_([a-z_]+) ([0-9.e+-]+)$/gm)) out[m[1]!] = Number(m[2])
      return out
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    },
  }
}

/**
 * A TCP load balancer on 127.0.0.1: each connection goes to the next backend in turn that
 * accepts it (a dead one is skipped), as an operator's balancer would do. Returns its ws URL.
 */
export async function loadBalancer(backends: () => number[]): Promise<string> {
  let next = 0
  const server = createServer((client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.pause()
    const ports = backends()
    const attempt = (tries: number): void => {
      if (tries >= ports.length) return void client.destroy()
      const port = ports[next++ % ports.length]!
      const upstream = connect(port, '127.0.0.1')
      sockets.add(upstream)
      upstream.on('close', () => sockets.delete(upstream))
      let connected = false
      upstream.once('connect', () => {
        connected = true
        upstream.on('error', () => client.destroy())
        client.on('error', () => upstream.destroy())
        upstream.on('close', () => client.destroy())
        client.on('close', () => upstream.destroy())
        client.pipe(upstream)
        upstream.pipe(client)
        client.resume()
      })
      upstream.once('error', () => {
        if (!connected) attempt(tries + 1)
      })
    }
    attempt(0)
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  return `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
}

/** Kill every node, close balancers and drop the test databases. */
export async function releaseNodes(): Promise<void> {
  await Promise.all(
    children.splice(0).map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }),
  )
  for (const socket of sockets) socket.destroy()
  sockets.clear()
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))))
  for (const { admin, name } of databases.splice(0)) {
    const client = new pg.Client({ connectionString: admin })
    await client.connect()
    try {
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    } finally {
      await client.end()
    }
  }
}
