// What the user sees of a task: streaming text, one line per tool call with its result folded,
// and a closing summary with how to review the changes.
import { readAudit } from '../audit/chain.js';
import type { AgentEvent, AgentOutcome } from '../agent/loop.js';
import type { Context } from './context.js';
import { changeStat } from './runs.js';
import { safeText } from './terminal.js';

/** Model and pod text on one inert line: escapes shown, whitespace folded, cut at max. */
function oneLine(s: string, max = 100): string {
  const flat = safeText(s.replace(/[\t\n]+/g, ' ')).replace(/ +/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

type Out = Pick<NodeJS.WriteStream, 'write' | 'isTTY'>;

/** Everything the model or the pod wrote goes through safeText: it cannot drive the terminal. */
export function renderTaskEvent(e: AgentEvent, redact: (s: string) => string, out: Out = process.stdout): void {
  // On a terminal, a progress line stands while a tool runs and is replaced by its result.
  const tty = Boolean(out.isTTY);
  switch (e.type) {
    case 'text': out.write(safeText(redact(e.delta))); return;
    case 'tool.call': out.write(`\n  ▸ ${e.name} ${oneLine(redact(JSON.stringify(e.input)), 90)}\n${tty ? '    … running in the pod' : ''}`); return;
    case 'tool.result': out.write(`${tty ? '\r\x1b[K' : ''}    ${e.isError ? '✗' : '✓'} ${oneLine(redact(e.content), 100)} (${Math.round(e.durationMs)} ms)\n`); return;
    case 'model.error': out.write(`\nclawpod: ${safeText(e.error)}\n`); return;
    case 'policy.deny': out.write(`    ✗ denied: ${safeText(e.reason)}\n`); return;
    default: return;
  }
}

export function taskSummary(ctx: Context, id: string, o: AgentOutcome, ms: number): string {
  let allowed = 0;
  let denied = 0;
  let files = 0;
  let stat = '';
  let limits: string[] = [];
  try {
    const run = ctx.store().getRun(id);
    files = run?.filesChanged ?? 0;
    stat = changeStat(ctx, id);
    for (const e of readAudit(run?.auditPath ?? '')) {
      if (e.data.terminated === true) continue;
      if (e.type === 'net.allow') allowed++;
      if (e.type === 'net.deny') denied++;
      if (e.type === 'limit.hit') limits.push(String(e.data.cap));
    }
  } catch { limits = []; }
  const why = o.reason === 'done' ? 'done' : `stopped: ${o.reason}${o.error ? ` (${safeText(o.error)})` : ''}`;
  return [
    '',
    `clawpod: ${why} · ${o.turns} turn(s) · ${o.usage.inputTokens + o.usage.outputTokens} tokens · ${o.toolCalls} tool call(s) · ${(ms / 1000).toFixed(1)} s`,
    `clawpod: ${files} file(s) changed${stat ? ` (${stat})` : ''} · outbound ${allowed} allowed, ${denied} denied${limits.length ? ` · limits hit: ${limits.join(', ')}` : ''}`,
    files ? `clawpod: review with clawpod runs diff ${id}, then runs apply ${id} or runs discard ${id}` : `clawpod: run ${id}`,
    '',
  ].join('\n');
}
