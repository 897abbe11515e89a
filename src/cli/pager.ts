// Long output (diffs) through the user's pager, as git does: only when stdout is a terminal,
// $PAGER run by the shell (PAGER='' or 'cat' means none), `less` by default with LESS=FRX when
// LESS is unset (F: quit when it fits one screen, R: colour escapes pass, X: the screen is not
// cleared on exit). The text is made inert before it reaches the pager, colour added after.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The command line of the pager to use, or null for none. Pure: the caller passes the facts. */
export function pagerCommand(opts: { isTTY: boolean; env: NodeJS.ProcessEnv; noPager?: boolean; onPath?: (name: string) => boolean }): string | null {
  if (!opts.isTTY || opts.noPager) return null;
  const p = opts.env.PAGER;
  if (p !== undefined) return p.trim() === '' || p.trim() === 'cat' ? null : p;
  return (opts.onPath ?? onPath)('less', opts.env) ? 'less' : null;
}

function onPath(name: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.PATH ?? '/usr/bin:/bin').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d || '.', name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export interface Sink {
  /** false: the reader went away (the pager quit); stop writing. A pager that reads slowly (less
   *  reads what it shows) is waited for: the text is never held in memory whole. */
  write(s: string): boolean | Promise<boolean>;
  /** Waits for the pager to exit. */
  end(): Promise<void>;
}

/** Where a long text goes: a pager when pagerCommand says so, else stdout. */
export function openSink(cmd: string | null, env: NodeJS.ProcessEnv = process.env): Sink {
  if (cmd === null) {
    return {
      write: (s) => {
        process.stdout.write(s);
        return !process.stdout.destroyed;
      },
      end: async () => {},
    };
  }
  const child: ChildProcess = spawn('/bin/sh', ['-c', cmd], {
    stdio: ['pipe', 'inherit', 'inherit'],
    env: { ...env, LESS: env.LESS ?? 'FRX', LV: env.LV ?? '-c' },
  });
  let gone = false;
  const done = new Promise<void>((resolve) => {
    child.on('close', () => {
      gone = true;
      resolve();
    });
    child.on('error', () => {
      gone = true;
      resolve();
    });
  });
  // The user quitting the pager early closes its stdin: not an error.
  child.stdin?.on('error', () => {
    gone = true;
  });
  return {
    write: (s) => {
      const w = child.stdin;
      if (gone || !w || w.destroyed) return false;
      if (w.write(s)) return true;
      return new Promise<boolean>((resolve) => {
        const on = () => {
          w.off('drain', on);
          child.off('close', on);
          resolve(!gone && !w.destroyed);
        };
        w.on('drain', on);
        child.on('close', on);
      });
    },
    end: async () => {
      child.stdin?.end();
      await done;
    },
  };
}
