/**
 * A transport wrapper that remembers each room's current attachment, so a platform adapter can
 * say a room's status at any time (`ContextSync` reports only changes, some of which happen
 * before `open` resolves). Used by the car's relay link and the PC.
 *
 * @module
 */
import type { Transport, TransportAttachment } from './transport.js'

/**
 * `inner`, recording every attachment in `attachments` by room id until it is detached (a newer
 * attachment of the same room replaces the entry; detaching the older one leaves it).
 */
export function trackedTransport(inner: Transport, attachments: Map<string, TransportAttachment>): Transport {
  return {
    kind: inner.kind,
    attach(room) {
      const attachment = inner.attach(room)
      attachments.set(room.roomId, attachment)
      return {
        get status() {
          return attachment.status
        },
        on: (event, listener) => attachment.on(event, listener),
        detach() {
          if (attachments.get(room.roomId) === attachment) attachments.delete(room.roomId)
          attachment.detach()
        },
      }
    },
    close: () => inner.close(),
  }
}
