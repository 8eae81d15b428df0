#!/usr/bin/env node
// The `contextsync` command. From the published package it runs the build (dist/bin.js); from a
// clone that was never built (`npm install` only) it runs the TypeScript sources through tsx, a
// dev dependency there — so `npx contextsync relay` works in both.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const built = new URL('../dist/bin.js', import.meta.url)
if (existsSync(fileURLToPath(built))) {
  await import(built.href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import(new URL('../src/bin.ts', import.meta.url).href)
}
