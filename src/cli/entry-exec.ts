// Process entry for `clawpod exec`, the hot path: bin/clawpod loads this one for exec and entry.ts
// for every other command, so a short command's start-up (the bytes and files Node must load)
// holds nothing of the review, policy or agent commands. See scripts/bundle.mjs.
import { mainExec } from './main-exec.js';

const code = await mainExec(process.argv.slice(3));
process.exitCode = code;
// Exiting at once skips Node's own teardown (~1 ms of every exec), but only with none of the
// output still queued: writes to a pipe are asynchronous, and the event loop drains them first.
if (process.stdout.writableLength === 0 && process.stderr.writableLength === 0) process.exit(code);
