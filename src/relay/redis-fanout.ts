/**
 * {@link RelayFanout} over Redis pub/sub (`ioredis`): one channel per room
 * (`<prefix>room:<roomId>`) plus a control channel every node listens to (`<prefix>control`,
 * revocations and relay passes), one subscriber connection and one publisher connection per node.
 *
 * Redis pub/sub delivers at most once: a message published while a subscriber is disconnected
 * (restart, `CLIENT KILL TYPE pubsub`, a network cut) is gone. That is why a node treats what
 * arrives as a hint (`fanout.ts`): ioredis resubscribes on reconnect, and the relay then catches
 * every open room up from the store. The publisher does not queue while Redis is away (a
 * notification that cannot go now is worth nothing later); receivers catch up by their timer.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { Redis, RedisOptions } from 'ioredis'
import { requireOptional } from '../adapters/optional-module.js'
import { ClosedError } from '../errors.js'
import {
  decodeFanoutMessage,
  encodeAwarenessNotice,
  encodePassNotice,
  encodeRevocationNotice,
  encodeUpdateNotice,
  type AwarenessOwner,
  type FanoutHandlers,
  type RelayFanout,
} from './fanout.js'

/** Options of {@link redisFanout}. */
export interface RedisFanoutOptions {
  /** This node's id; default 12 random hex characters. */
  node?: string
  /** Channel prefix; default `contextsync:`. Nodes sharing a Redis for several relays use different ones. */
  prefix?: string
  /** Updates up to this size travel inline; larger ones are announced by seq only. Default 65 536. */
  inlineBytes?: number
  /** Extra ioredis settings (TLS, password). */
  redis?: RedisOptions
  /** Told about connection errors (ioredis reconnects by itself). */
  onError?: (error: unknown) => void
}

const toBytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

/**
 * Fan-out over the Redis at `url` (`redis://host:port`).
 *
 * @example
 * ```ts
 * import { createRelay, postgresStore, redisFanout } from 'contextsync/relay'
 * const relay = await createRelay({ store: await postgresStore(pgUrl), fanout: redisFanout(redisUrl) })
 * ```
 */
export function redisFanout(url: string, options: RedisFanoutOptions = {}): RelayFanout {
  const node = options.node ?? randomBytes(6).toString('hex')
  const prefix = options.prefix ?? 'contextsync:'
  const inlineBytes = options.inlineBytes ?? 65_536
  const channel = (roomId: string): string => `${prefix}room:${roomId}`
  const control = `${prefix}control`
  let subscriber: Redis | undefined
  let publisher: Redis | undefined
  const joined = new Set<string>()
  let closed = false

  const publish = (name: string, message: Uint8Array): void => {
    if (!publisher || closed) return
    publisher.publish(name, Buffer.from(message.buffer, message.byteOffset, message.byteLength)).catch((error: unknown) => options.onError?.(error))
  }

  return {
    node,
    async start(handlers: FanoutHandlers) {
      const mod = requireOptional<{ Redis: new (url: string, options?: RedisOptions) => Redis }>('ioredis', 'the relay with Redis fan-out')
      const common: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 2, ...options.redis }
      subscriber = new mod.Redis(url, { ...common, autoResubscribe: true })
      publisher = new mod.Redis(url, { ...common, enableOfflineQueue: false })
      for (const connection of [subscriber, publisher]) connection.on('error', (error: unknown) => options.onError?.(error))
      const offset = prefix.length + 'room:'.length
      subscriber.on('messageBuffer', (name: Buffer, payload: Buffer) => {
        const message = decodeFanoutMessage(toBytes(payload))
        if (!message || message.node === node) return
        if (message.kind === 'revocation') handlers.revocation(message.revocation)
        else if (message.kind === 'pass') handlers.pass(message.pass)
        else handlers.message(name.toString('utf8').slice(offset), message)
      })
      let readyOnce = false
      subscriber.on('ready', () => {
        // The first ready is the start; every later one follows a lost connection. Catch up once
        // the resubscriptions ioredis sent on reconnect are in force: Redis answers in order, so
        // a PING answered means every SUBSCRIBE before it was — nothing published after the
        // catch-up's read can be missed.
        if (readyOnce) {
          const connection = subscriber
          void connection
            ?.ping()
            .catch(() => undefined)
            .then(() => handlers.reconnected())
        }
        readyOnce = true
      })
      await Promise.all([subscriber.connect(), publisher.connect()])
      await subscriber.subscribe(control)
    },
    join(roomId) {
      if (joined.has(roomId)) return
      joined.add(roomId)
      subscriber?.subscribe(channel(roomId)).catch((error: unknown) => options.onError?.(error))
    },
    leave(roomId) {
      if (!joined.delete(roomId)) return
      subscriber?.unsubscribe(channel(roomId)).catch((error: unknown) => options.onError?.(error))
    },
    publishUpdate(roomId, seq, update) {
      publish(channel(roomId), encodeUpdateNotice(node, seq, update, update.length <= inlineBytes))
    },
    publishAwareness(roomId, update, owner: AwarenessOwner | undefined) {
      publish(channel(roomId), encodeAwarenessNotice(node, update, owner))
    },
    publishRevocation(revocation) {
      publish(control, encodeRevocationNotice(node, revocation))
    },
    publishPass(pass) {
      publish(control, encodePassNotice(node, pass))
    },
    async ping() {
      if (!subscriber || !publisher || subscriber.status !== 'ready') throw new ClosedError('the Redis fan-out is not connected')
      await publisher.ping()
    },
    async close() {
      if (closed) return
      closed = true
      await Promise.all([subscriber?.quit().catch(() => subscriber?.disconnect()), publisher?.quit().catch(() => publisher?.disconnect())])
    },
  }
}
