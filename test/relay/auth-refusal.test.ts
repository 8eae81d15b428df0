import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ContextSyncError } from '../../src/errors.js'
import { authenticate, RelayRefusal, tokenCheck, type AuthHook } from '../../src/relay/auth.js'
import { ready } from '../../src/crypto/index.js'
import { CloseCode, type AuthContext } from '../../src/relay/index.js'
import { closeRelays, rawClient, roomUrl, startRelay } from './helpers.js'

beforeAll(async () => {
  await ready()
})
afterEach(async () => {
  await closeRelays()
})

const context = { roomId: `${'a'.repeat(32)}.notes`, token: undefined, request: {} } as Omit<AuthContext, 'identity'>

/** The refusal `promise` rejects with (fails the test if it resolves or throws something else). */
async function refusalOf(promise: Promise<unknown>): Promise<RelayRefusal> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  )
  expect(error).toBeInstanceOf(RelayRefusal)
  return error as RelayRefusal
}

describe('RelayRefusal', () => {
  it('is a ContextSyncError with code relay-refused, the close code in closeCode and its reason and notice kept', () => {
    const notice = new Uint8Array([1, 2, 3])
    const refusal = new RelayRefusal(CloseCode.Forbidden, 'device revoked', notice)
    expect(refusal).toBeInstanceOf(ContextSyncError)
    expect(refusal).toBeInstanceOf(Error)
    expect(refusal.name).toBe('RelayRefusal')
    expect(refusal.code).toBe('relay-refused')
    expect(refusal.closeCode).toBe(CloseCode.Forbidden)
    expect(refusal.reason).toBe('device revoked')
    expect(refusal.message).toBe('device revoked')
    expect(refusal.notice).toBe(notice)
  })

  it('tokenCheck refuses a missing token with a RelayRefusal carrying 4401', async () => {
    const refusal = await refusalOf(tokenCheck()(context.roomId, undefined))
    expect(refusal.code).toBe('relay-refused')
    expect(refusal.closeCode).toBe(CloseCode.Unauthorized)
  })

  it("authenticate passes a hook's refusal through and turns any other hook error into a 4401 refusal", async () => {
    const refusing: AuthHook = {
      name: 'refusing',
      onAuthenticate() {
        throw new RelayRefusal(CloseCode.RateLimited, 'slow down')
      },
    }
    const broken: AuthHook = {
      name: 'broken',
      onAuthenticate() {
        throw new TypeError('bug in the hook')
      },
    }
    const passed = await refusalOf(authenticate([refusing], context))
    expect(passed.closeCode).toBe(CloseCode.RateLimited)
    expect(passed.reason).toBe('slow down')
    const failedClosed = await refusalOf(authenticate([broken], context))
    expect(failedClosed.closeCode).toBe(CloseCode.Unauthorized)
    expect(failedClosed.reason).toBe('auth hook broken failed')
  })

  it("a custom hook's refusal reaches the client as its close code and reason", async () => {
    const relay = await startRelay({
      auth: [
        {
          name: 'closed-for-maintenance',
          onAuthenticate() {
            throw new RelayRefusal(CloseCode.Forbidden, 'closed for maintenance')
          },
        },
      ],
    })
    const client = rawClient(roomUrl(relay, context.roomId))
    expect(await client.closed).toEqual({ code: CloseCode.Forbidden, reason: 'closed for maintenance' })
    expect(client.messages).toHaveLength(0)
  })
})
