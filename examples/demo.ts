// `npm run demo`: runs the same demo as `contextsync demo`.
import { runDemo } from '../src/demo.js'

process.exitCode = await runDemo()
