// `clawpod run "TASK"`: the agent on the host, its tools in one live pod.
import fs from 'node:fs';
import type { Context } from '../../core/context.js';
import { UserError } from '../../core/errors.js';
import { parseCommand, positiveInt, type Command } from '../args.js';
import { narrowingOf, POD_ENV, POD_OPTIONS } from './common.js';
import { terminalIO, type TerminalIO } from '../terminal-io.js';
import { colourOn } from '../output.js';
import type { TaskResult } from '../../core/run.js';

export const RUN: Command = {
  name: 'run',
  usage: '[OPTIONS] "TASK" | -',
  summary:
    'Give the agent a task. The model runs on the host; every tool it uses runs in one pod for the task\'s life.\nWhat it changes waits for review (clawpod runs diff, then apply or discard). "-" reads the task from stdin.',
  options: {
    ...POD_OPTIONS,
    model: { type: 'string', arg: 'NAME', desc: 'provider:model, e.g. anthropic:claude-sonnet-5 or openai:gpt-4o' },
    'memory-name': { type: 'string', arg: 'NAME', desc: 'a named memory kept between tasks, read-write at /memory' },
    'max-turns': { type: 'string', arg: 'N', desc: 'most model turns (default 50)' },
    'max-tokens': { type: 'string', arg: 'N', desc: 'most tokens in all (default 2000000)' },
  },
  env: [
    ['ANTHROPIC_API_KEY', 'the key for anthropic: models (never enters a pod)'],
    ['ANTHROPIC_BASE_URL', 'another Anthropic-compatible endpoint'],
    ['OPENAI_API_KEY', 'the key for openai: models'],
    ['OPENAI_BASE_URL', 'another OpenAI-compatible endpoint (a local one needs no key)'],
    ['CLAWPOD_MODEL', 'the default for --model'],
    ...POD_ENV,
  ],
  exits: [
    ['0', 'the agent finished the task'],
    ['1', 'the agent stopped short (turn or token budget, a model error, a refused tool)'],
    ['124', 'the wall-clock timeout was reached'],
    ['130', 'interrupted (Ctrl-C): the work so far is kept for review'],
    ['125', 'clawpod could not run it (bad policy, no model key, a guard it cannot enforce)'],
  ],
  examples: ['clawpod run "add a --verbose flag and a test for it"', 'echo "fix the failing test" | clawpod run -p policy.yaml --timeout 5m -'],
};

export async function cmdRun(ctx: Context, args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(RUN, args);
  let task = positionals.join(' ');
  if (positionals.length === 1 && positionals[0] === '-') {
    try {
      task = fs.readFileSync(0, 'utf8');
    } catch (e) {
      throw new UserError(`could not read the task from stdin (${(e as NodeJS.ErrnoException).code})`);
    }
    if (!task.trim()) throw new UserError('the task read from stdin is empty (pipe it in: echo "TASK" | clawpod run -)');
  }
  const { runTask } = await import('../../core/run.js');
  const { io, summary } = await agentFace();
  try {
    const r = await runTask(ctx, {
      policy: values.policy as string | undefined,
      workspace: values.workspace as string | undefined,
      backend: values.backend as string | undefined,
      model: values.model as string | undefined,
      task,
      allowDegraded: Boolean(values['allow-degraded']),
      cwd: process.cwd(),
      maxTurns: positiveInt(values['max-turns'], 'max-turns'),
      maxTokens: positiveInt(values['max-tokens'], 'max-tokens'),
      memory: values['memory-name'] as string | undefined,
      atHostPath: Boolean(values['at-host-path']),
      narrow: narrowingOf(values),
      removeIfUnchanged: Boolean(values.rm),
      io,
    });
    summary(ctx, r);
    return r.exitCode;
  } finally {
    io.dispose();
  }
}

/** The terminal face of an agent run (run and demo): the live view (cli/run-view.ts), approvals
 *  on the terminal (cli/approve.ts), the pod's stderr shown prefixed and inert, Ctrl-C as the
 *  run's interrupt. Off a terminal the trace goes to stderr and only the answer to stdout. */
export async function agentFace(): Promise<{ io: TerminalIO; summary(ctx: Context, r: TaskResult): void }> {
  const { createRunView } = await import('../run-view.js');
  const { terminalApprove } = await import('../approve.js');
  const { podStderrStream } = await import('../../core/terminal.js');
  const { changeStat } = await import('../../core/runs.js');
  const view = createRunView({
    out: process.stdout,
    err: process.stderr,
    isTTY: Boolean(process.stdout.isTTY),
    errIsTTY: Boolean(process.stderr.isTTY),
    colour: colourOn(process.stderr),
    width: process.stdout.columns || undefined,
  });
  const podErr = podStderrStream();
  podErr.pipe(view.podStderr);
  const io = terminalIO({
    stdin: false,
    stdout: null,
    stderr: podErr,
    view: (e) => view.onEvent(e),
    // The run's stop (SIGTERM, SIGHUP) ends a question nobody is answering.
    approve: async (req) => {
      const a = await terminalApprove(req, { input: process.stdin, output: process.stderr, signal: io.signal });
      // Quit at the question is the user's interrupt, as a Ctrl-C anywhere else: work kept, exit 130.
      if (a.answer === 'quit') io.interrupt();
      return a;
    },
    onInterrupt: 'stopping the agent; the work so far is kept for review (Ctrl-C again stops the pod at once)',
  });
  io.notice = (line) => view.onNotice(line);
  return {
    io,
    summary: (ctx, r) => {
      view.onEvent({
        source: 'run',
        type: 'run.end',
        data: {
          id: r.run,
          outcome: r.outcome,
          durationMs: r.durationMs,
          filesChanged: r.filesChanged,
          interrupted: r.status === 'interrupted',
        },
      });
      let stat = '';
      try {
        stat = changeStat(ctx, r.run);
      } catch {
        /* removed with --rm, or no change set */
      }
      view.summary({ stat, ms: r.durationMs });
    },
  };
}
