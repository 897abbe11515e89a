// `clawpod exec`'s own entry: the command people and scripts run most loads only what it needs
// (the bundle gives it its own file; every other command loads the full command line, main.ts).
import { createContext } from '../core/context.js';
import { cmdExec } from './commands/exec.js';
import { quietOnClosedOutput, reportFailures } from './failures.js';

export async function mainExec(args: string[]): Promise<number> {
  quietOnClosedOutput('exec');
  return await reportFailures(async () => {
    const ctx = createContext();
    try {
      return await cmdExec(ctx, args);
    } finally {
      ctx.close();
    }
  });
}
