/**
 * The rendezvous room of one invite and the bodies of the messages sent through it (WIRE.md
 * "Pairing"). The room holds an ordinary outer doc — a `log` array of sealed pairing messages — so
 * any transport carries it; a relay serves `pair.*` rooms without tokens but with tight limits.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import type { Transport, TransportAttachment } from '../adapters/transport.js'
import { createSealedLogDoc, sealedLog } from '../crdt/sealed-log.js'
import { keyId, openPairingMessage, PAIRING_NONCE_BYTES, PairingMessageType, sealPairingMessage, type DeviceKeys } from '../crypto/index.js'
import { toHex } from '../util/bytes.js'

/** A join request as the owner reads it. */
export interface JoinRequest {
  deviceId: string
  deviceIdBytes: Uint8Array
  signPublicKey: Uint8Array
  boxPublicKey: Uint8Array
  kind: string
  name: string
  /** The joiner's commitment to its nonce. */
  commitment: Uint8Array
}

/** An opened pairing message and the device it concerns (the addressee, or the sender of a request). */
export interface PairingMessage {
  type: PairingMessageType
  /** 16-byte device id every message after the request names, hex. */
  deviceId: string
  /** The body after that id (for a request: the whole request body). */
  rest: Uint8Array
  request?: JoinRequest
}

/** The room of one invite, sealing and opening under the pairing key. */
export interface PairingChannel {
  /** Whether any transport ever connected, and the last transport error (to explain a timeout). */
  reached(): { connected: boolean; lastError?: string }
  /** Seal and send: `deviceId` (16 bytes) then `rest`, or a join request. */
  send(type: PairingMessageType, deviceIdBytes: Uint8Array, rest?: Uint8Array): void
  sendRequest(device: DeviceKeys, kind: string, name: string, commitment: Uint8Array): void
  /** Every authentic message from the other side (sealed under the key, well formed), also earlier ones. */
  onMessage(fn: (message: PairingMessage) => void): void
  close(): void
}

/** Open the rendezvous room `roomId` on every transport. */
export function openPairingChannel(roomId: string, key: Uint8Array, transports: Transport[]): PairingChannel {
  const doc = createSealedLogDoc()
  const awareness = new Awareness(doc)
  awareness.setLocalState(null)
  const attachments: TransportAttachment[] = transports.map((t) => t.attach({ roomId, doc, awareness }))
  let connected = attachments.some((a) => a.status === 'connected' || a.status === 'synced')
  let lastError: string | undefined
  for (const attachment of attachments) {
    attachment.on('status', ({ status }) => {
      if (status === 'connected' || status === 'synced') connected = true
    })
    attachment.on('error', ({ message }) => (lastError = message))
  }
  const log = sealedLog(doc)
  const origin = Symbol('pairing')
  const push = (type: PairingMessageType, body: Uint8Array): void => {
    Y.transact(doc, () => log.push([sealPairingMessage(key, roomId, type, body)]), origin)
  }
  const open = (bytes: Uint8Array): PairingMessage | undefined => {
    const opened = openPairingMessage(key, roomId, bytes)
    if (!opened.ok) return undefined
    const { type, body } = opened.value
    if (type === PairingMessageType.JoinRequest) {
      const request = decodeJoinRequest(body)
      return request && { type, deviceId: request.deviceId, rest: body, request }
    }
    if (body.length < 16) return undefined
    return { type, deviceId: toHex(body.subarray(0, 16)), rest: body.subarray(16) }
  }
  return {
    reached: () => (lastError === undefined ? { connected } : { connected, lastError }),
    send(type, deviceIdBytes, rest = new Uint8Array(0)) {
      const body = new Uint8Array(16 + rest.length)
      body.set(deviceIdBytes)
      body.set(rest, 16)
      push(type, body)
    },
    sendRequest(device, kind, name, commitment) {
      push(PairingMessageType.JoinRequest, encodeJoinRequest(device, kind, name, commitment))
    },
    onMessage(fn) {
      const deliver = (bytes: unknown): void => {
        if (!(bytes instanceof Uint8Array)) return
        const message = open(bytes)
        if (message) fn(message)
      }
      log.observe((event, transaction) => {
        if (transaction.origin === origin) return
        for (const item of event.changes.added) for (const content of item.content.getContent()) deliver(content)
      })
      for (const bytes of log.toArray()) deliver(bytes)
    },
    close() {
      for (const attachment of attachments) attachment.detach()
      awareness.destroy()
      doc.destroy()
    },
  }
}

function encodeJoinRequest(device: DeviceKeys, kind: string, name: string, commitment: Uint8Array): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8Array(enc, device.signPublicKey)
  encoding.writeUint8Array(enc, device.boxPublicKey)
  encoding.writeVarString(enc, kind)
  encoding.writeVarString(enc, name)
  encoding.writeUint8Array(enc, commitment)
  return encoding.toUint8Array(enc)
}

function decodeJoinRequest(body: Uint8Array): JoinRequest | undefined {
  try {
    const dec = decoding.createDecoder(body)
    const signPublicKey = decoding.readUint8Array(dec, 32).slice()
    const boxPublicKey = decoding.readUint8Array(dec, 32).slice()
    const kind = decoding.readVarString(dec)
    const name = decoding.readVarString(dec).slice(0, 200)
    const commitment = decoding.readUint8Array(dec, 32).slice()
    if (decoding.hasContent(dec)) return undefined
    const deviceIdBytes = keyId(signPublicKey)
    return { deviceId: toHex(deviceIdBytes), deviceIdBytes, signPublicKey, boxPublicKey, kind, name, commitment }
  } catch {
    return undefined
  }
}

/** A nonce from a message body: exactly {@link PAIRING_NONCE_BYTES} bytes, else `undefined`. */
export function readNonce(rest: Uint8Array, offset = 0): Uint8Array | undefined {
  return rest.length === offset + PAIRING_NONCE_BYTES ? rest.slice(offset) : undefined
}
