import { beforeAll, describe, expect, it } from 'vitest'
import { publicRandomBytes as randomBytes, ready } from '../../src/crypto/index.js'
import { toBase64Url } from '../../src/util/bytes.js'

beforeAll(async () => {
  await ready()
})

describe('publicRandomBytes (pooled)', () => {
  it('never hands out the same bytes twice, across pool refills and sizes', () => {
    const seen = new Set<string>()
    // 3000 × (16 + 24) bytes crosses the 4 KiB pool boundary ~30 times, at odd offsets too.
    for (let i = 0; i < 3000; i++) {
      for (const length of [16, 24, (i % 7) + 9]) {
        const bytes = randomBytes(length)
        expect(bytes.length).toBe(length)
        seen.add(toBase64Url(bytes))
      }
    }
    expect(seen.size).toBe(9000)
  })

  it('returns independent copies (mutating one never affects later output)', () => {
    const a = randomBytes(16)
    a.fill(0)
    const b = randomBytes(16)
    expect(b.some((x) => x !== 0)).toBe(true)
    expect(randomBytes(0).length).toBe(0)
    expect(randomBytes(100_000).length).toBe(100_000)
  })
})
