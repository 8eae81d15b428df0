import { defineConfig } from 'tsup'

/**
 * One ESM + CJS + .d.ts build per entry point. Node-only entries (sqlite, relay, the CLI) keep
 * their dependencies external; the isomorphic core never imports Node built-ins.
 */
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    sqlite: 'src/entries/sqlite.ts',
    idb: 'src/entries/idb.ts',
    websocket: 'src/entries/websocket.ts',
    'websocket-node': 'src/entries/websocket-node.ts',
    link: 'src/entries/link.ts',
    relay: 'src/relay/index.ts',
    testing: 'src/entries/testing.ts',
    compat: 'src/entries/compat.ts',
    pc: 'adapters/pc/index.ts',
    car: 'adapters/car/index.ts',
    phone: 'adapters/phone/index.ts',
    glasses: 'adapters/glasses/index.ts',
    bin: 'src/bin.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  // Kept in dist/ for local debugging; package.json `files` leaves them out of the tarball (they
  // embed the sources and were two thirds of it).
  sourcemap: true,
  clean: true,
  target: 'es2022',
  splitting: true,
  // `import.meta.url` (optional Node dependencies are loaded with createRequire) in the CJS build.
  shims: true,
  treeshake: true,
})
