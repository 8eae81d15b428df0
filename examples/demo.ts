// The same demo as `contextsync demo`: four devices of one account through an embedded relay.
import { runDemo } from '../src/demo.js'

process.exitCode = await runDemo()
