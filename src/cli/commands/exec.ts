// `clawpod exec`: one command in one fresh pod.
import { isatty } from 'node:tty';
import type { Context } from '../../core/context.js';
import { UserError } from '../../core/errors.js';
import { runExec } from '../../core/exec.js';
import { ignoredAtEnd } from '../../core/record-changes.js';
import { saveTerminal } from '../../core/terminal.js';
import { attachTerminal, type AttachedTerminal } from '../pty.js';
import { terminalIO } from '../terminal-io.js';
import { parseCommand, type Command } from '../args.js';
import { narrowingOf, POD_ENV, POD_OPTIONS } from './common.js';

export const EXEC: Command = {
  name: 'exec',
  usage: '[OPTIONS] [--] CMD [ARG...]',
  summary:
    'Run one command in a fresh pod: no network, read-only system, its own copy of the workspace.\nWhat it changes waits for review (clawpod runs diff, then apply or discard).',
  commandAfter: true,
  options: {
    ...POD_OPTIONS,
    tty: { type: 'boolean', short: 't', desc: 'give the pod a terminal of its own (the default when stdin and stdout are terminals)' },
    'no-tty': { type: 'boolean', short: 'T', desc: 'no terminal for the pod, even when clawpod has one' },
    json: { type: 'boolean', desc: 'end with a JSON summary of the run on stderr (its last line)' },
    server: { type: 'boolean', desc: 'run it through the clawpod serve of $CLAWPOD_HOME (serve.json): queued, recorded and reviewable there' },
  },
  notes: [
    'With a terminal (-t), Ctrl-C goes to the program in the pod, as in a terminal of its own. If the program ignores it (prints nothing) and you press Ctrl-C again, clawpod stops the pod; SIGTERM or SIGHUP to clawpod stop it too. What the pod changed so far is kept for review either way (exit 130).',
  ],
  env: POD_ENV,
  exits: [
    ['N', "the command's own exit code"],
    ['124', 'the wall-clock timeout was reached'],
    ['126, 127', 'the command is not executable / not found'],
    ['130', 'interrupted (Ctrl-C)'],
    ['137', 'killed by the memory cap or by clawpod'],
    ['125', 'clawpod could not run it (bad policy, backend missing, a guard it cannot enforce)'],
  ],
  examples: ['clawpod exec -- npm test', 'clawpod exec -p policy.yaml --memory 256Mi -e NODE_ENV=test -- npm ci'],
};

export async function cmdExec(ctx: Context, args: string[]): Promise<number> {
  const { values, positionals, rest } = parseCommand(EXEC, args);
  if (positionals.length) throw new UserError(`unexpected "${positionals[0]}" (put the command after --)`);
  if (values.tty && values['no-tty']) throw new UserError('-t and -T contradict each other: give one of them');
  if (values.server) return await (await import('../remote.js')).execRemote(ctx, values, rest);
  // isatty(0), not process.stdin.isTTY: making process.stdin costs ~0.5 ms, and a run that does
  // not relay its input never needs it.
  const stdinTty = isatty(0);
  const onTerminal = stdinTty && Boolean(process.stdout.isTTY);
  if (values.tty && !stdinTty) throw new UserError('-t needs a terminal on stdin (drop -t when piping input in)');
  const tty = !values['no-tty'] && (Boolean(values.tty) || onTerminal);
  // A terminal on stdin without a pty of the pod's own is relayed through clawpod (line by line):
  // the pod never holds the user's terminal (it could write to it unrecorded or turn off Ctrl-C).
  const relay = !tty && stdinTty;
  const io = terminalIO({ stdin: relay ? 'relay' : true });
  // The pod gets the terminal, or a terminal of its own relayed through ours: whatever it does
  // to it (raw mode, no echo, its size) is undone.
  const terminal = saveTerminal();
  let attached: AttachedTerminal | null = null;
  let summary;
  try {
    summary = await runExec(
      ctx,
      {
        policy: values.policy as string | undefined,
        workspace: values.workspace as string | undefined,
        backend: values.backend as string | undefined,
        command: rest,
        allowDegraded: Boolean(values['allow-degraded']),
        atHostPath: Boolean(values['at-host-path']),
        narrow: narrowingOf(values),
        removeIfUnchanged: Boolean(values.rm),
        cwd: process.cwd(),
        io,
        tty,
        ttySize: tty && process.stdout.rows && process.stdout.columns ? { rows: process.stdout.rows, cols: process.stdout.columns } : undefined,
      },
      (_id, pod, secrets) => {
        if (tty) attached = attachTerminal(pod, { secrets, stop: () => io.interrupt() });
      },
    );
    await (attached as AttachedTerminal | null)?.done;
  } finally {
    (attached as AttachedTerminal | null)?.restore();
    if (relay) process.stdin.pause();
    io.dispose();
    terminal.restore();
  }
  // The pod had the screen: whatever modes it left on (concealed text, a
  // hidden cursor, mouse reporting, bracketed paste) are turned off before clawpod's own lines.
  if (process.stdout.isTTY) process.stdout.write('\x1b[0m\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l');
  // Memory and pids kills were already told as they happened (with who and the policy key).
  if (summary.limitHit && summary.limitHit !== 'memory' && summary.limitHit !== 'pids') {
    process.stderr.write(`clawpod: ${summary.limitHit} limit hit: pod killed\n`);
  }
  if (summary.status === 'interrupted') {
    process.stderr.write(
      summary.filesChanged > 0 ? 'clawpod: interrupted (exit 130); what the pod changed is kept\n' : 'clawpod: interrupted (exit 130); nothing was kept\n',
    );
  }
  if (summary.filesChanged > 0) {
    const ignored = ignoredAtEnd(ctx.runDir(summary.run));
    const held = ignored > 0 ? ` (${ignored} of them ignored: not shown or applied unless asked)` : '';
    process.stderr.write(`clawpod: ${summary.filesChanged} change(s) waiting${held}: clawpod runs diff ${summary.run} (then apply or discard)\n`);
  }
  // The summary is the last line on stderr, alone: nothing is written after it.
  if (values.json) process.stderr.write(`${JSON.stringify(summary)}\n`);
  return summary.exitCode;
}
