/**
 * {@link TurnStream}: an assistant turn written chunk by chunk while other devices watch it arrive.
 *
 * @module
 */
import * as Y from 'yjs'
import { findTurn, partMap, readTurn, sessionMap, turnParts, type Turn } from '../crdt/sessions.js'
import { NotFoundError, ValidationError } from '../errors.js'
import { STREAM_ORIGIN, type Replica } from '../sync/replica.js'
import type { ScopeReplicas } from './memory.js'
import { MAX_TEXT_LENGTH } from './check-args.js'
import { renewLease, requirePart } from './session-parts.js'
import { type TurnPartInput } from './session-api-types.js'

/** A turn being streamed. */
export class TurnStream {
  private ended = false
  private map: Y.Map<unknown> | undefined
  private current: { type: 'text' | 'reasoning'; part: Y.Map<unknown>; text: Y.Text } | undefined

  /** @internal */
  constructor(
    /** The turn id. */
    readonly id: string,
    private readonly sessionId: string,
    private readonly replica: Replica,
    private readonly scopes: ScopeReplicas,
  ) {}

  /** Append a chunk of answer text. */
  write(chunk: string): void {
    this.appendText('text', chunk)
  }

  /** Append a chunk of reasoning. */
  writeReasoning(chunk: string): void {
    this.appendText('reasoning', chunk)
  }

  /** Add a complete part (tool call, tool result, file, data…); ends the text part being streamed. */
  part(input: TurnPartInput): void {
    this.checkWritable()
    const part = requirePart(input, 'part')
    this.replica.inner.transact(() => {
      this.closeCurrent()
      turnParts(this.turnMap()).push([partMap(part)])
    })
  }

  /** Mark the turn done; resolves with it once sealed and stored locally. */
  async end(): Promise<Turn> {
    this.scopes.assertOpen()
    if (!this.ended) {
      this.ended = true
      this.replica.inner.transact(() => {
        const turn = this.turnMap()
        this.closeCurrent()
        // Parts left streaming (e.g. from an interrupted writer) end with the turn.
        for (const part of turnParts(turn)) if (part instanceof Y.Map && part.get('state') === 'streaming') part.set('state', 'done')
        const now = Date.now()
        turn.set('done', true)
        turn.set('updatedAt', now)
        sessionMap(this.replica.inner, this.sessionId)?.set('updatedAt', now)
        renewLease(this.replica.inner, this.sessionId, this.scopes.deviceId, now)
      })
    }
    await this.replica.whenFlushed()
    const turn = readTurn(findTurn(this.replica.inner, this.sessionId, this.id))
    if (!turn) throw new NotFoundError(`turn '${this.id}' no longer exists on this device`)
    return turn
  }

  private appendText(type: 'text' | 'reasoning', chunk: string): void {
    this.checkWritable()
    if (typeof chunk !== 'string') throw new ValidationError(`chunk must be a string, got ${typeof chunk}`)
    if (chunk.length === 0) return
    this.replica.inner.transact(() => {
      const current = this.current
      if (!current || current.type !== type || current.part._item?.deleted || current.text.length + chunk.length > MAX_TEXT_LENGTH) {
        this.closeCurrent()
        const part = partMap({ type, text: '', state: 'streaming' })
        turnParts(this.turnMap()).push([part])
        this.current = { type, part, text: part.get('text') as Y.Text }
      }
      this.current!.text.insert(this.current!.text.length, chunk)
    }, STREAM_ORIGIN)
  }

  private closeCurrent(): void {
    if (this.current && !this.current.part._item?.deleted) this.current.part.set('state', 'done')
    this.current = undefined
  }

  private checkWritable(): void {
    this.scopes.assertOpen()
    if (this.ended) throw new ValidationError('write() after end() on a turn stream')
  }

  private turnMap(): Y.Map<unknown> {
    // Cached: a long session would otherwise be scanned once per streamed chunk.
    if (this.map && !this.map._item?.deleted) return this.map
    const map = (this.map = findTurn(this.replica.inner, this.sessionId, this.id))
    if (!map) throw new NotFoundError(`turn '${this.id}' no longer exists on this device`)
    return map
  }
}
