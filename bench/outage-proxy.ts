/**
 * A TCP proxy on 127.0.0.1 that can take the network away (bench/car.ts's outage): while down it
 * drops every live connection and every new one at once, as a tunnel or a dead cell does to a
 * head unit. It records when it accepted each connection, so a bench reads each client's
 * reconnect delay after the network returns from its own backoff state.
 *
 * @module
 */
import { connect, createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

/** See {@link outageProxy}. */
export interface OutageProxy {
  /** `ws://127.0.0.1:<port>` to give clients instead of the relay's URL. */
  url: string
  /** True: drop every connection and refuse new ones; false: forward again. */
  setDown(down: boolean): void
  /** `performance.now()` of every connection forwarded. */
  readonly accepted: number[]
  close(): Promise<void>
}

/** A proxy in front of `target` (`ws://127.0.0.1:<port>`). */
export async function outageProxy(target: string): Promise<OutageProxy> {
  const { hostname, port } = new URL(target)
  const live = new Set<Socket>()
  const accepted: number[] = []
  let down = false
  const server = createServer((client) => {
    if (down) return void client.destroy()
    accepted.push(performance.now())
    const upstream = connect(Number(port), hostname)
    for (const socket of [client, upstream]) {
      live.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => {
        live.delete(socket)
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted,
    setDown(value) {
      down = value
      if (value) for (const socket of live) socket.destroy()
    },
    close: () =>
      new Promise<void>((resolve) => {
        down = true
        for (const socket of live) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
