// Process entry for `clawpod exec`, the hot path: bin/clawpod loads this one for exec and entry.ts
// for every other command, so a short command's start-up (the bytes and files Node must load)
// holds nothing of the review, policy or agent commands. See scripts/bundle.mjs.
import { mainExec } from './main-exec.js';

process.exitCode = await mainExec(process.argv.slice(3));
