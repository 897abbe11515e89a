// How every command ends when something goes wrong: one line on stderr and its exit code. Shared
// by the full command line (main.ts) and exec's own fast entry (main-exec.ts).
import { safeText } from '../core/terminal.js';
import { isUserCaused } from '../util/errors.js';
import { HelpRequest } from './args.js';
import { print } from './output.js';

/** A reader that goes away (`clawpod audit show ID | head`) ends the output, never with a stack
 *  trace. exec and run carry on quietly: the pod's run must still be recorded. */
export function quietOnClosedOutput(cmd: string | undefined): void {
  const onError = (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    if (cmd !== 'exec' && cmd !== 'run') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  };
  process.stdout.on('error', onError);
  process.stderr.on('error', onError);
}

/** Runs a command; --help's text and every error become output and an exit code. */
export async function reportFailures(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof HelpRequest) {
      print(e.text);
      return 0;
    }
    // Every user-causable error names the problem and the fix in one line (util/errors.ts).
    if (isUserCaused(e)) {
      process.stderr.write(`clawpod: ${safeText(e.message)}\n`);
      return e.exitCode;
    }
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`clawpod: internal error: ${safeText(err.message ?? String(e))}${err.code ? ` (${err.code})` : ''}\n`);
    if (process.env.CLAWPOD_DEBUG) process.stderr.write(`${err.stack}\n`);
    return 125;
  }
}
