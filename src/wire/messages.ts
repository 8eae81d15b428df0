/**
 * The y-websocket message framing every contextsync peer speaks: the relay, the loopback network,
 * the WebSocket transport and the tampering relay used in tests. A frame starts with one varuint
 * naming its message type; a sync frame then carries a y-protocols sync message, an awareness
 * frame one awareness update.
 *
 * The numbers are y-websocket's (`messageSync`, `messageAwareness`, `messageAuth`,
 * `messageQueryAwareness`), so a stock y-websocket server or provider interoperates.
 *
 * @module
 */

/** y-websocket message types (first varuint of a frame). */
export const MessageType = { Sync: 0, Awareness: 1, Auth: 2, QueryAwareness: 3 } as const

/** One of the {@link MessageType} numbers. */
export type MessageType = (typeof MessageType)[keyof typeof MessageType]
