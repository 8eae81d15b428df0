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
    relay: 'src/relay/index.ts',
    testing: 'src/entries/testing.ts',
    bin: 'src/bin.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  splitting: true,
  treeshake: true,
})
