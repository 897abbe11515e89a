// bash: one shell command in the task's pod. Each call is a fresh shell in the workspace (the pod
// keeps files between calls, not the shell's cwd or variables).
import type { Tool } from '../types.js';
import { boundText, defineTool, formatBytes, fail, MAX_RESULT_BYTES, ok, optNum, seconds, str, ToolInputError, WORKSPACE } from './common.js';

export const BASH_DEFAULT_TIMEOUT_MS = 120_000;
export const BASH_MAX_TIMEOUT_MS = 600_000;
/** The pod may hand back this much; the model sees at most MAX_RESULT_BYTES of it. */
const POD_OUTPUT_BYTES = 4 << 20;

// bash when the pod has it, sh otherwise: some images carry only a POSIX shell.
// The workspace directory comes as $1, never inside the script: a host path may hold any character.
const LAUNCH = 'cd "$1" 2>/dev/null; if [ -x /bin/bash ]; then exec /bin/bash -c "$2"; fi; exec /bin/sh -c "$2"';

export function bashTool(dir = WORKSPACE): Tool {
  return defineTool(
    {
      name: 'bash',
      description:
        `Run a shell command with bash -c in ${dir} inside the sandbox (no network unless the policy allows hosts). ` +
        'Each call is a fresh shell: files persist between calls, the working directory and variables do not. ' +
        `Default timeout ${seconds(BASH_DEFAULT_TIMEOUT_MS)}, at most ${seconds(BASH_MAX_TIMEOUT_MS)}. Output is truncated past ${MAX_RESULT_BYTES / 1024} KiB.`,
      input_schema: {
        type: 'object',
        properties: {
          command: { type: 'string', description: 'The command line, run with bash -c' },
          timeout_ms: { type: 'number', description: `Timeout in milliseconds (default ${BASH_DEFAULT_TIMEOUT_MS}, max ${BASH_MAX_TIMEOUT_MS})` },
        },
        required: ['command'],
      },
    },
    async (input, ops) => {
      const command = str(input, 'command');
      if (command.includes('\0')) throw new ToolInputError('field "command" contains a NUL byte');
      const asked = optNum(input, 'timeout_ms');
      if (asked !== undefined && asked <= 0) throw new ToolInputError('field "timeout_ms" must be positive');
      const timeoutMs = Math.min(Math.round(asked ?? BASH_DEFAULT_TIMEOUT_MS), BASH_MAX_TIMEOUT_MS);
      const r = await ops.exec(['sh', '-c', LAUNCH, 'sh', dir, command], { timeoutMs, maxOutput: POD_OUTPUT_BYTES });
      const body = formatOutput(r.stdout, r.stderr, r.truncated);
      if (r.timedOut) return fail(`command timed out after ${seconds(timeoutMs)} and was killed${body ? `\n${body}` : ''}`);
      const text = r.exitCode === 0 ? body : `${body}${body ? '\n' : ''}[exit code: ${r.exitCode}]`;
      return r.exitCode === 0 ? ok(text || '(no output)') : fail(text);
    },
  );
}

/** stdout as is, stderr labelled; the bound is shared so neither stream can crowd out the other. */
export function formatOutput(stdout: Buffer, stderr: Buffer, podTruncated: boolean): string {
  const outLimit = stderr.length === 0 ? MAX_RESULT_BYTES : Math.max(MAX_RESULT_BYTES / 2, MAX_RESULT_BYTES - stderr.length);
  const errLimit = MAX_RESULT_BYTES - Math.min(stdout.length, outLimit);
  const parts: string[] = [];
  if (stdout.length > 0) parts.push(boundText(stdout, outLimit));
  if (stderr.length > 0) parts.push(`[stderr]\n${boundText(stderr, errLimit)}`);
  // The pod's own bound drops output without counting it, so the note can only give a floor.
  if (podTruncated) parts.push(`[output truncated: the command wrote more than ${formatBytes(POD_OUTPUT_BYTES)}]`);
  return parts.map((p) => p.replace(/\n$/, '')).join('\n');
}
