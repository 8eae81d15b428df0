/**
 * What every transport's room attachment does the same way: hold its status, tell listeners when
 * it changes, and report errors for its room. A transport extends it with how it connects.
 *
 * @module
 */
import { Emitter } from '../util/emitter.js'
import type { TransportAttachment, TransportAttachmentEvents, TransportStatus } from './transport.js'

/** Status and events of one attached room; subclasses say how it connects and detaches. */
export abstract class AttachmentBase implements TransportAttachment {
  private readonly events = new Emitter<TransportAttachmentEvents>()
  private current: TransportStatus = 'disconnected'

  /** `roomId`: the room the events name. */
  constructor(private readonly eventRoomId: string) {}

  get status(): TransportStatus {
    return this.current
  }

  on<E extends keyof TransportAttachmentEvents>(event: E, listener: TransportAttachmentEvents[E]): () => void {
    return this.events.on(event, listener)
  }

  abstract detach(): void

  /** Move to `status`, telling listeners (nothing when it is the current one). */
  protected setStatus(status: TransportStatus): void {
    if (status === this.current) return
    this.current = status
    this.events.emit('status', { status, roomId: this.eventRoomId })
  }

  /** Report an error for this room. */
  protected emitError(code: string, message: string): void {
    this.events.emit('error', { code, message, roomId: this.eventRoomId })
  }

  /** Drop every listener (after the final status, on detach). */
  protected clearListeners(): void {
    this.events.clear()
  }
}
