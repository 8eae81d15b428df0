/**
 * `contextsync/phone` — the phone as the account's hub and owner (Node and React Native):
 * {@link openPhone} opens the owner device on the host's storage (or SQLite on Node), syncs it
 * with the relay over WebSocket, and serves glasses over a Bluetooth link with `serveLink` —
 * admitting only the rooms their relay pass covers, with the relay's own token check — so the
 * glasses sync through the phone when it is online and with the phone alone when it is not.
 * Pairing helpers for the phone's screen: invite code, QR payload, SAS (ARCHITECTURE.md
 * "adapters/phone", README "Phone").
 *
 * @example
 * ```ts
 * import { openPhone } from 'contextsync/phone'
 * const phone = await openPhone({ storage, keys, relayUrl: 'wss://relay.example.com' })
 * const invite = await phone.invite({ kind: 'glasses', confirmSas: (sas) => ui.confirm(sas) })
 * ui.showQr(invite.qr)
 * ble.onCentralConnected((channel) => phone.serveLink(channel))
 * ```
 *
 * @module
 */
export { openPhone, Phone, type PhoneOptions, type PhoneInvite, type PhoneInviteOptions } from './open-phone.js'
export { PHONE_LINK_AUDIENCE } from './hub.js'
export { pairingQr, parsePairingQr, formatSas, PairingQrError, PAIRING_QR_PREFIX, PAIRING_QR_VERSION, type PairingPayload, type PairingQrReason } from './pairing.js'
