/**
 * Link benchmark (`BENCH=link npm run bench`): the glasses ⇄ phone link on the BLE simulator
 * (`contextsync/testing`, virtual time; BLE and power parameters with their sources in
 * `src/testing/radio-power.ts`), each figure beside its baseline in the same run.
 *
 * 1. **Bytes on the link per memory write.** A real E2EE replica on the glasses writes memories
 *    (sealed, signed envelopes in its sealed log); its outer doc is attached to `linkTransport`,
 *    the phone runs `linkServer`. Baseline: the plaintext Yjs update of the same write (the
 *    inner doc's update). Writes are batched the way a flush window batches them — B writes
 *    sealed as one envelope (B = 1, 5, 20) — and the link carries them with a radio window that
 *    holds them together. Figures count every byte of every packet, both directions (headers,
 *    credit and ack packets, sync framing), at MTU 185.
 * 2. **Radio wake-ups per hour of a scripted glasses day.** One hour: a memory every 3–5 min
 *    (glasses → phone), two conversations (a user turn from the glasses, then a streamed answer
 *    of 60 tokens at 80 ms from the phone), presence renewed every 15 s (what y-protocols'
 *    awareness does by itself: `outdatedTimeout / 2`). Envelopes are random bytes of measured
 *    sizes: a memory envelope from part 1, the answer's envelopes sealed by a real replica (one
 *    per token, or one per 1 s of tokens); the link does not look inside. Baseline: the same link
 *    with radio window 0 — plain y-protocols over it, each update sent at once. Subjects: timer
 *    windows of 2 s, 60 s or 300 s on the glasses (a power profile on battery) and 0.5 s on the
 *    phone; riding radio events (`rideRadioEvents`). All deliver the same data (checked) and
 *    report the delivery delays that cost, in virtual time.
 *
 * 3. **Presence during a large sync** on the same channel (the priority lane), vs an idle link.
 * 4. **Handoff offer bytes** on the link for a 20-turn session, vs Apple Handoff's 3 KB budget.
 * 5. **Token latency** of a streamed answer phone → glasses through the link (simulator, virtual
 *    time) vs a direct WebSocket over real sockets on 127.0.0.1 (wall time).
 *
 * Part 2 runs twice: table A without peripheral latency (the glasses attend every event; events
 * with data counted — the figures before latency was modelled), table B with peripheral latency
 * 30 at 30 ms and every event the radio attends counted, against the same run's idle link.
 *
 * Environment: BENCH_LINK_MTU (185), BENCH_LINK_INTERVAL_MS (30), BENCH_LINK_SEED (1),
 * BENCH_LINK_KEEPALIVE_MS (600 000), BENCH_LINK_LATENCY (30), BENCH_LINK_SUPERVISION_MS (6 000).
 */
import { fmt, percentile, printTable } from './table.js'
import { bytesPerWrite, handoffBytes, type WriteFigures } from './link-bytes.js'
import { INTERVAL, LATENCY, MTU, SUPERVISION_MS, streamedEnvelopes, type AnswerSealing } from './link-fixtures.js'
import { glassesHour, type DayFigures } from './link-hour.js'
import { presenceDuringSync, websocketTokenDelays } from './link-latency.js'

/** Run the link benchmark and print its tables. */
export async function benchLink(): Promise<void> {
  const rows: string[][] = []
  let single: WriteFigures | undefined
  for (const batch of [1, 5, 20]) {
    const figures = await bytesPerWrite(batch, 60)
    single ??= figures
    rows.push([
      `${batch} write${batch > 1 ? 's' : ''} per envelope`,
      fmt(figures.plaintext, 'B'),
      fmt(figures.envelope, 'B'),
      fmt(figures.glassesToPhone, 'B'),
      fmt(figures.bothWays, 'B'),
      fmt(figures.glassesToPhone / figures.plaintext, '×'),
      fmt(figures.bothWays / figures.plaintext, '×'),
    ])
  }
  printTable(
    `Link bytes per memory write (MTU ${MTU}, ${INTERVAL} ms interval, radio window 2 s; baseline: the plaintext Yjs update of the write)`,
    ['batching', 'plaintext update', 'sealed envelope', 'link glasses→phone', 'link both ways', 'g→p vs plaintext', 'both vs plaintext'],
    rows,
  )

  const memoryEnvelope = Math.round(single!.envelope)
  const tokenSizes = await streamedEnvelopes(1)
  const perToken: AnswerSealing = { sizes: tokenSizes, tokens: tokenSizes.map(() => 1), sealDelayMs: 20 }
  const burstSizes = await streamedEnvelopes(13)
  const perSecond: AnswerSealing = { sizes: burstSizes, tokens: burstSizes.map((_, k) => Math.min(13, 60 - 13 * k)), sealDelayMs: 1_000 }
  const answerBytes = (a: AnswerSealing): number => a.sizes.reduce((x, y) => x + y, 0)
  const plain = { glassesWindowMs: 0, phoneWindowMs: 0, rideRadioEvents: false }
  const timer = (glassesWindowMs: number) => ({ glassesWindowMs, phoneWindowMs: 500, rideRadioEvents: false })
  const ms = (values: number[], p: number): string => (values.length === 0 ? '–' : fmt(percentile(values, p), 'ms'))
  const script = `memory every 3–5 min, 2 streamed answers × 60 tokens at 80 ms, presence renewed every 15 s; memory envelope ${memoryEnvelope} B; an answer sealed per token: ${perToken.sizes.length} envelopes, ${answerBytes(perToken)} B; sealed per 1 s: ${perSecond.sizes.length} envelopes, ${answerBytes(perSecond)} B`

  // Table A: the connection without peripheral latency (the glasses attend every 30 ms event),
  // counting the events that carry data — the figures this bench reported before latency was modelled.
  const a: Array<[string, DayFigures]> = []
  for (const [name, subject] of [
    ['plain y-protocols, each update at once (baseline)', plain],
    ['link, timer windows glasses 2 s / phone 0.5 s', timer(2_000)],
    ['link, timer windows glasses 60 s / phone 0.5 s', timer(60_000)],
    ['link, timer windows glasses 300 s / phone 0.5 s', timer(300_000)],
  ] as const) {
    a.push([name, await glassesHour({ name, latency: 0, ...subject }, memoryEnvelope, perToken)])
  }
  const baseA = a[0]![1]
  printTable(
    `Glasses radio per hour, peripheral latency 0 (${INTERVAL} ms interval): connection events with data (${script})`,
    ['subject', 'envelopes', 'data wake-ups', 'receive-only', 'fewer vs baseline', 'token p50', 'token p99'],
    a.map(([name, f]) => [
      name,
      String(f.delivered),
      String(f.wakeUps),
      String(f.receiveOnly),
      fmt(baseA.wakeUps / f.wakeUps, '×'),
      ms(f.tokenDelays, 50),
      ms(f.tokenDelays, 99),
    ]),
  )

  // Table B: peripheral latency as an accessory negotiates it, every event the radio attends counted.
  const idle = await glassesHour({ name: 'idle', latency: LATENCY, ...plain, idle: true }, memoryEnvelope, perToken)
  const b: Array<[string, DayFigures]> = []
  for (const [name, subject] of [
    ['plain y-protocols, each update at once (baseline)', plain],
    ['link, timer windows glasses 2 s / phone 0.5 s', timer(2_000)],
    ['link, timer windows glasses 60 s / phone 0.5 s', timer(60_000)],
    ['link, timer windows glasses 300 s / phone 0.5 s', timer(300_000)],
    ['link, riding radio events, window 2 s / phone 0.5 s', { glassesWindowMs: 2_000, phoneWindowMs: 500, rideRadioEvents: true }],
    ['link, riding radio events, window 2 s / phone at once', { glassesWindowMs: 2_000, phoneWindowMs: 0, rideRadioEvents: true }],
    [
      'link, riding radio events, window 2 s / phone 0.5 s, answer sealed per 1 s (screen off)',
      { glassesWindowMs: 2_000, phoneWindowMs: 500, rideRadioEvents: true, answer: perSecond },
    ],
    [
      'link, riding radio events, phone at once, latency 0 while answering (screen on)',
      { glassesWindowMs: 2_000, phoneWindowMs: 0, rideRadioEvents: true, latencyWhileAnswering: 0 },
    ],
  ] as const) {
    b.push([name, await glassesHour({ name, latency: LATENCY, ...subject }, memoryEnvelope, perToken)])
  }
  const baseB = b[0]![1]
  const added = (f: DayFigures): number => f.radioWakeUps - idle.radioWakeUps
  printTable(
    `Glasses radio per hour, ${INTERVAL} ms interval, peripheral latency ${LATENCY} (idle floor: one event per ${INTERVAL * (LATENCY + 1)} ms), supervision ${SUPERVISION_MS / 1000} s: every event the radio attends (${script}); idle link: ${idle.radioWakeUps} wake-ups, ${fmt(idle.energyMj, 'mJ')}`,
    [
      'subject',
      'envelopes',
      'data wake-ups',
      'radio wake-ups',
      'added to idle floor',
      'added: fewer vs baseline',
      'all: fewer vs baseline',
      'radio on',
      'energy',
      'token p50',
      'token p99',
      'presence p50',
      'presence p99',
      'memory p50',
    ],
    b.map(([name, f]) => [
      name,
      String(f.delivered),
      String(f.wakeUps),
      String(f.radioWakeUps),
      String(added(f)),
      // At or below the idle floor (sends that moved the forced events can even save one): nothing to divide by.
      added(f) > 0 ? fmt(added(baseB) / added(f), '×') : `none above floor`,
      fmt(baseB.radioWakeUps / f.radioWakeUps, '×'),
      fmt(f.radioOnMs, 'ms'),
      fmt(f.energyMj, 'mJ'),
      ms(f.tokenDelays, 50),
      ms(f.tokenDelays, 99),
      ms(f.presenceDelays, 50),
      ms(f.presenceDelays, 99),
      ms(f.memoryDelays, 50),
    ]),
  )

  const lanes: string[][] = []
  for (const kb of [0, 100, 500]) {
    const f = await presenceDuringSync(Math.max(1, kb * 1024))
    lanes.push([
      kb === 0 ? 'idle link (baseline)' : `during a ${kb} KB initial sync`,
      fmt(f.presenceMs, 'ms'),
      kb === 0 ? '–' : fmt(f.syncMs, 'ms'),
      kb === 0 ? '–' : fmt(f.syncMs / f.presenceMs, '×'),
    ])
  }
  printTable(
    `Presence change delivered glasses → phone while a large sync is under way on the same channel (MTU ${MTU}, ${INTERVAL} ms interval, 4 packets per event; virtual time)`,
    ['while', 'presence delivered after', 'rest of the sync after the change (what presence waited before lanes)', 'ratio'],
    lanes,
  )

  const ws = await websocketTokenDelays(perToken, 2)
  const p50 = (values: number[]): number => percentile(values, 50)
  const tokenRows: Array<[string, number[]]> = [
    ['direct WebSocket, real sockets on 127.0.0.1 (baseline)', ws],
    [`link, latency 0 (${INTERVAL} ms interval: Android BALANCED), no windows`, a[0]![1].tokenDelays],
    [`link, latency 0, phone window 0.5 s`, a[1]![1].tokenDelays],
    [`link, latency ${LATENCY} (iOS accessory limit), riding radio events, phone at once`, b[5]![1].tokenDelays],
    [`link, latency ${LATENCY}, riding radio events, phone window 0.5 s`, b[4]![1].tokenDelays],
    [`link, latency ${LATENCY}, answer sealed per 1 s (screen off)`, b[6]![1].tokenDelays],
    [`link, latency ${LATENCY}, 0 while answering (screen on), riding radio events, phone at once`, b[7]![1].tokenDelays],
  ]
  printTable(
    `Streamed answer phone → glasses: token latency from the token's creation to the glasses' doc (2 answers × 60 tokens at 80 ms, sealed 20 ms after each token unless noted; link rows on the simulator, MTU ${MTU}, virtual time; WebSocket in wall time)`,
    ['path', 'tokens', 'p50', 'p99', 'p50 vs WebSocket', 'p99 vs WebSocket'],
    tokenRows.map(([name, delays]) => [
      name,
      String(delays.length),
      fmt(p50(delays), 'ms'),
      fmt(percentile(delays, 99), 'ms'),
      fmt(p50(delays) / p50(ws), '×'),
      fmt(percentile(delays, 99) / percentile(ws, 99), '×'),
    ]),
  )

  const h = await handoffBytes()
  const budget = 3 * 1024
  printTable(
    `Handoff offer on the link, glasses → phone, for a session of 20 turns (MTU ${MTU}; target ≤ 3 KB, Apple Handoff's payload budget)`,
    ['what', 'bytes', 'vs 3 KB budget'],
    [
      ['the conversation itself (Yjs state of the session: what carrying the turns would cost)', fmt(h.conversation, 'B'), fmt(h.conversation / budget, '×')],
      ['offer: plaintext Yjs update', fmt(h.plaintext, 'B'), fmt(h.plaintext / budget, '×')],
      ['offer: sealed envelope', fmt(h.envelope, 'B'), fmt(h.envelope / budget, '×')],
      ['offer: link bytes glasses → phone', fmt(h.glassesToPhone, 'B'), fmt(h.glassesToPhone / budget, '×')],
      ['offer: link bytes both ways', fmt(h.bothWays, 'B'), fmt(h.bothWays / budget, '×')],
    ],
  )
}
