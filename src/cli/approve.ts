// The terminal's answer to "may the agent run this tool call?": the whole input shown first, then
// yes / no / always for this tool in this run / quit. Ctrl-C at the question is quit. Without a
// terminal nobody can answer, so the call is refused and the reason says how to get one.
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { ApprovalAnswer, ApprovalRequest } from '../core/io.js';
import { renderApproval, safeText } from '../core/terminal.js';

export interface ApproveStreams {
  input: Readable & { isTTY?: boolean };
  output: Writable & { columns?: number; isTTY?: boolean };
  /** Aborted when the run is being stopped: the question gives way and the answer is quit. */
  signal?: AbortSignal;
}

/** Why a call is refused when there is no terminal to ask on. */
export const noTerminalReason = (tool: string) => `approval needed but no terminal to ask (run it from a terminal, or remove ${tool} from tools.approve)`;

/** The question's last line; a pod cannot fake it (its stderr lines all start with "pod│ "). */
export const approvalQuestion = (tool: string) => `clawpod: run it? [y]es / [n]o / [a]lways for ${safeText(tool)} in this run / [q]uit (Enter: no) `;

/** A typed answer, or null when it is none of them. */
export function parseAnswer(typed: string): ApprovalAnswer | null {
  const a = typed.trim().toLowerCase();
  if (a === '' || a === 'n' || a === 'no') return 'no';
  if (a === 'y' || a === 'yes') return 'yes';
  if (a === 'a' || a === 'always') return 'always';
  if (a === 'q' || a === 'quit') return 'quit';
  return null;
}

/** Asks on the terminal; stdin and stderr by default. */
export async function terminalApprove(
  req: ApprovalRequest,
  s: ApproveStreams = { input: process.stdin, output: process.stderr },
): Promise<{ answer: ApprovalAnswer; reason?: string }> {
  if (!s.input.isTTY) return { answer: 'no', reason: noTerminalReason(req.tool) };
  s.output.write(`\n${renderApproval(req.tool, req.input, s.output.columns || 80)}`);
  const rl = createInterface({ input: s.input, output: s.output, terminal: true });
  let onAbort = () => {};
  try {
    return await new Promise((resolve) => {
      let done = false;
      const finish = (answer: ApprovalAnswer, reason?: string) => {
        if (done) return;
        done = true;
        resolve(reason ? { answer, reason } : { answer });
      };
      // Ctrl-C at the question: the terminal is in raw mode, so it arrives here, not as a signal.
      rl.on('SIGINT', () => {
        s.output.write('^C\n');
        finish('quit');
      });
      // Ctrl-D, or the terminal went away: nobody answered, so not this call.
      rl.on('close', () => finish('no', 'the terminal closed before an answer'));
      onAbort = () => finish('quit');
      if (s.signal?.aborted) return finish('quit');
      s.signal?.addEventListener('abort', onAbort, { once: true });
      const ask = (q: string) =>
        rl.question(q, (typed) => {
          const a = parseAnswer(typed);
          if (a) finish(a);
          else ask(`clawpod: answer y, n, a or q: `);
        });
      ask(approvalQuestion(req.tool));
    });
  } finally {
    s.signal?.removeEventListener('abort', onAbort);
    rl.close();
  }
}
