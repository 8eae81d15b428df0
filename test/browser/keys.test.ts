/**
 * Keys at rest in a real browser (README "Keys at rest"): Debian's Chromium loads a page (bundled
 * for `platform: 'browser'`) that enrols a device on IndexedDB with `webCryptoKeys`. No IndexedDB
 * record of the origin holds a seed; the wrapping key the browser keeps is non-extractable; the
 * store reopens as the same device with the protector and refuses to open without it.
 * Loopback only (the page server on 127.0.0.1). Skips loudly without Chromium.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleForBrowser, CHROMIUM_LAUNCH, hasChromium, warnIfNoChromium } from './harness.js'

warnIfNoChromium('test/browser/keys.test.ts (WebCrypto key protector in real Chromium)')

let server: Server
let url = ''
beforeAll(async () => {
  if (!hasChromium) return
  const bundle = await bundleForBrowser({ keys: 'test/browser/keys-page.ts' })
  expect(bundle.errors).toEqual([])
  const script = bundle.outputs.get('keys.js')!
  server = createServer((req, res) => {
    if (req.url === '/keys.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' })
      res.end(script)
    } else {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<!doctype html><html><head><meta charset="utf-8"></head><body><script type="module" src="/keys.js"></script></body></html>')
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
}, 120_000)
afterAll(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()))
})

describe.runIf(hasChromium)('webCryptoKeys in Chromium', () => {
  it('no IndexedDB record holds a seed, the wrapping key is non-extractable, and the store opens only with the protector', async () => {
    const browser = await chromium.launch(CHROMIUM_LAUNCH)
    try {
      const page = await browser.newPage()
      await page.goto(url)
      await page.waitForFunction(() => (window as unknown as { __keysResult?: unknown }).__keysResult !== undefined, undefined, { timeout: 60_000 })
      const result = await page.evaluate(() => (window as unknown as { __keysResult: Record<string, unknown> }).__keysResult)
      expect(result.error).toBeUndefined()
      expect(result.recordKinds).toEqual(['webcrypto', 'webcrypto'])
      expect(result.seedsInRecords).toBe(0)
      expect(result.keyExtractable).toBe(false)
      expect(result.reopenedAsSelf).toBe(true)
      expect(result.withoutProtector).toMatch(/^ConfigError: this store's keys are protected \(webcrypto\)/)
    } finally {
      await browser.close()
    }
  }, 120_000)
})
