/**
 * `npm run bench`: every figure side by side with its baseline, in the same run.
 * Select suites with BENCH=core,relay (default: all but the opt-in ones below). Suites load lazily, so one suite's
 * dependencies (Chromium for `browser`) are only needed when it runs.
 */
const suites: Record<string, () => Promise<void>> = {
  core: async () => (await import('./core.js')).benchCore(),
  storage: async () => (await import('./storage.js')).benchStorage(),
  relay: async () => (await import('./relay.js')).benchRelay(),
  devices: async () => (await import('./devices.js')).benchDevices(),
  ai: async () => (await import('./ai.js')).benchAi(),
  browser: async () => (await import('./browser.js')).benchBrowser(),
  seqset: async () => (await import('./seqset.js')).benchSeqSet(),
  integrity: async () => (await import('./integrity.js')).benchIntegrity(),
  install: async () => (await import('./install.js')).benchInstall(),
  keys: async () => (await import('./keys.js')).benchKeys(),
  pc: async () => (await import('./pc.js')).benchPc(),
  'relay-mix': async () => (await import('./relay-mix.js')).benchRelayMix(),
  car: async () => (await import('./car.js')).benchCar(),
  'car-storm': async () => (await import('./car-storm.js')).benchCarStorm(),
  link: async () => (await import('./link.js')).benchLink(),
  'relay-nodes': async () => (await import('./relay-nodes.js')).benchRelayNodes(),
  'relay-failover': async () => (await import('./relay-failover.js')).benchRelayFailover(),
}
/**
 * Suites only run when named: `integrity` and `install` compare against a baseline commit in a git
 * worktree (they need the history; `integrity` takes 10+ minutes, `install` packs and installs
 * both trees from the npm registry cache); `relay-nodes` and `relay-failover` need PostgreSQL and
 * Redis (`.ci/services`).
 */
const OPT_IN = new Set(['integrity', 'install', 'relay-nodes', 'relay-failover'])
const selected = (process.env.BENCH ?? Object.keys(suites).filter((s) => !OPT_IN.has(s)).join(',')).split(',').map((s) => s.trim())
console.log(`contextsync benchmarks — node ${process.version}, ${new Date().toISOString()}, suites: ${selected.join(', ')}`)
for (const name of selected) {
  const suite = suites[name]
  if (!suite) {
    console.error(`unknown bench suite '${name}'; known: ${Object.keys(suites).join(', ')}`)
    process.exitCode = 2
    continue
  }
  const started = performance.now()
  await suite()
  console.log(`(${name}: ${((performance.now() - started) / 1000).toFixed(1)} s)`)
}

export {}
