// What the person at the terminal sees of an agent run: the context it loaded, the model's text,
// one line per tool call with the first lines of its output, a denial once, a progress line that
// never outlives the step it describes, and a closing summary. When stdout is not a terminal the
// trace goes to stderr and stdout gets only the answer, so `clawpod run "..." > answer.md` works.
import { Writable } from 'node:stream';
import type { AgentEvent, AgentOutcome } from '../agent/loop.js';
import { readAudit } from '../audit/chain.js';
import type { Context } from '../core/context.js';
import type { RunEvent } from '../core/io.js';
import { changeStat } from '../core/runs.js';
import { safeText } from '../core/terminal.js';
import { type Colour, paint } from './output.js';

type Out = Pick<Writable, 'write'>;

export interface RunViewOptions {
  out: Out;
  err: Out;
  /** stdout is a terminal: the story goes there, live. Otherwise stdout gets only the answer. */
  isTTY: boolean;
  /** stderr is a terminal (default: isTTY): a progress line may stand there. */
  errIsTTY?: boolean;
  colour: boolean;
  /** Columns to cut lines at (default: 80 on a terminal, 120 otherwise). */
  width?: number;
  /** How many lines of each tool result are shown (default 6). */
  outputLines?: number;
}

/** What the closing summary says; all of it known from the run's events but the diff stat. */
export interface SummaryFacts {
  id: string;
  outcome: AgentOutcome;
  ms: number;
  filesChanged: number;
  /** "+12 -3" */
  stat?: string;
  allowed: number;
  denied: number;
  limits: string[];
  interrupted?: boolean;
}

export interface RunView {
  onEvent(e: RunEvent): void;
  onNotice(line: string): void;
  /** The closing lines (and, off a terminal, the answer on stdout). Facts not given come from the
   *  events seen (run.end, net.allow/deny, limit.hit); nothing is printed before run.end. */
  summary(extra?: { stat?: string; ms?: number }): void;
  /** Where the pod's own stderr goes (already prefixed and made inert): it clears the progress line first. */
  podStderr: Writable;
}

const PROGRESS = '    … running in the pod';
const CLEAR = '\r\x1b[K';

/** Model and pod text on one inert line: escapes shown, whitespace folded, cut at max columns. */
export function oneLine(s: string, max: number): string {
  const flat = safeText(s.replace(/[\t\n\r]+/g, ' '))
    .replace(/ +/g, ' ')
    .trim();
  return cut(flat, max);
}

function cut(s: string, max: number): string {
  const chars = [...s];
  return chars.length > max ? `${chars.slice(0, Math.max(1, max - 1)).join('')}…` : s;
}

/** The first `n` lines of a tool's output, each inert and cut to `width`, and how many more there were. */
export function outputHead(content: string, n: number, width: number): { lines: string[]; more: number } {
  const all = content.replace(/\n+$/, '').split('\n');
  const lines = all.slice(0, n).map((l) => cut(safeText(l.replace(/\r$/, '').replace(/\t/g, '  ')), width));
  return { lines, more: Math.max(0, all.length - n) };
}

/** The input of a call on one line: a shell command as itself, anything else as JSON. */
function callText(name: string, input: Record<string, unknown>): string {
  if (name === 'bash' && typeof input.command === 'string') return input.command;
  if (typeof input.path === 'string' && Object.keys(input).length === 1) return input.path;
  return JSON.stringify(input);
}

type ContextItem = { name: string; workspace: boolean };

/** run.context's data in words: what was loaded and which of it came from the (untrusted) workspace. */
export function contextLine(data: Record<string, unknown>, colour: boolean): string {
  const items: string[] = [];
  let fromWorkspace = false;
  const show = (it: ContextItem) => {
    fromWorkspace ||= it.workspace;
    return it.workspace ? `${safeText(it.name)} ${paint('(workspace)', 'yellow', colour)}` : safeText(it.name);
  };
  const files = Array.isArray(data.claudeMd) ? data.claudeMd : [];
  for (const f of files) {
    if (typeof f === 'string') items.push(show({ name: f.replace(/ \(workspace\)$/, ''), workspace: / \(workspace\)$/.test(f) }));
    else if (f && typeof f === 'object' && typeof (f as { name?: unknown }).name === 'string') {
      const o = f as { name: string; from?: string };
      items.push(show({ name: o.name, workspace: o.from === 'workspace' }));
    }
  }
  if (typeof data.memory === 'string' && data.memory) items.push(`memory "${safeText(data.memory)}"`);
  const skills = (Array.isArray(data.skills) ? data.skills : []).filter(
    (s): s is { name: string; from?: string } => Boolean(s) && typeof (s as { name?: unknown }).name === 'string',
  );
  if (skills.length) {
    const each = skills.map((s) =>
      s.from === 'workspace'
        ? show({ name: s.name, workspace: true })
        : `${safeText(s.name)} (${s.from === 'user' ? 'user' : safeText(String(s.from ?? '?'))})`,
    );
    items.push(`skills: ${each.join(', ')}`);
  }
  if (items.length === 0) return 'clawpod: context: none (no CLAUDE.md or AGENTS.md, memory or skills)';
  const warn = fromWorkspace ? ` · ${paint("(workspace) items are the project's text, untrusted: they steer the agent", 'yellow', colour)}` : '';
  return `clawpod: context: ${items.join(', ')}${warn}`;
}

/** The closing lines: how it ended, what it cost, what changed, how to review it. */
export function summaryText(f: SummaryFacts, colour = false): string {
  const o = f.outcome;
  const refused = o.refusedApprovals ?? 0;
  const why = f.interrupted
    ? paint('interrupted: the work so far is kept', 'yellow', colour)
    : o.reason === 'done' && refused
      ? paint('not done: the model finished, but tool calls it needed were refused', 'red', colour)
      : o.reason === 'done'
        ? paint('done', 'green', colour)
        : o.reason === 'stopped'
          ? paint(`stopped${o.error ? `: ${safeText(o.error)}` : ''}`, 'yellow', colour)
          : paint(`stopped: ${o.reason}${o.error ? ` (${safeText(o.error)})` : ''}`, 'red', colour);
  const lines = [
    '',
    `clawpod: ${why} · ${o.turns} turn(s) · ${o.usage.inputTokens + o.usage.outputTokens} tokens · ${o.toolCalls} tool call(s) · ${(f.ms / 1000).toFixed(1)} s`,
  ];
  if (refused)
    lines.push(`clawpod: ${refused} tool call(s) needed approval and nobody could be asked (run it from a terminal, or remove the tool from tools.approve)`);
  lines.push(
    `clawpod: ${f.filesChanged} file(s) changed${f.stat ? ` (${f.stat})` : ''} · outbound ${f.allowed} allowed, ${f.denied} denied${f.limits.length ? ` · limits hit: ${f.limits.join(', ')}` : ''}`,
  );
  lines.push(f.filesChanged ? `clawpod: review with clawpod runs diff ${f.id}, then runs apply ${f.id} or runs discard ${f.id}` : `clawpod: run ${f.id}`, '');
  return lines.join('\n');
}

/** The terminal's view of one run: a subscriber to its events and notices. */
export function createRunView(o: RunViewOptions): RunView {
  const trace = o.isTTY ? o.out : o.err;
  const live = o.isTTY || (o.errIsTTY ?? o.isTTY);
  const width = o.width ?? (o.isTTY ? 80 : 120);
  const n = o.outputLines ?? 6;
  const c = (s: string, k: Colour) => paint(s, k, o.colour);
  let progress = false; // the progress line is on the screen
  let running: string | null = null; // the tool call now running, if any
  let atLineStart = true; // the trace's cursor is at the start of a line
  let held = ''; // off a terminal: this turn's text, until we know whether it is the answer
  let answer = '';
  let answerWritten = false;
  const denied = new Set<string>();
  let lastDenial: string | null = null;
  const tally = { allowed: 0, denied: 0, limits: [] as string[] };
  let end: Record<string, unknown> | null = null;

  const clear = () => {
    if (progress) {
      trace.write(CLEAR);
      progress = false;
    }
  };
  const draw = () => {
    if (live && running && !progress) {
      lineStart();
      trace.write(c(PROGRESS, 'dim'));
      progress = true;
    }
  };
  const lineStart = () => {
    if (!atLineStart) {
      trace.write('\n');
      atLineStart = true;
    }
  };
  const say = (text: string) => {
    clear();
    lineStart();
    trace.write(text.endsWith('\n') ? text : `${text}\n`);
    atLineStart = true;
  };
  // stdout and stderr are most often the same terminal: a line for stderr starts on a line of its own.
  const toErr = (line: string) => {
    clear();
    lineStart();
    o.err.write(`${line}\n`);
    draw();
  };
  const flushHeld = () => {
    if (held) {
      say(safeText(held));
      held = '';
    }
  };

  function onAgent(e: AgentEvent): void {
    switch (e.type) {
      case 'text':
        if (!o.isTTY) {
          held += e.delta;
          return;
        }
        clear();
        trace.write(safeText(e.delta));
        if (e.delta) atLineStart = e.delta.endsWith('\n');
        return;
      case 'model.request':
        flushHeld();
        return;
      case 'tool.call':
        flushHeld();
        clear();
        lineStart();
        trace.write(
          `\n  ${c('▸', 'cyan')} ${c(safeText(e.name), 'bold')} ${oneLine(callText(e.name, e.input), Math.max(20, width - 5 - [...e.name].length))}\n`,
        );
        running = e.id;
        draw();
        return;
      case 'approval.ask':
        clear();
        return;
      case 'approval':
        if (e.answer === 'always' && e.asked) say(`    ${c('✓', 'green')} ${safeText(e.tool)} approved for the rest of this run`);
        if (e.answer === 'yes' || e.answer === 'always') draw();
        return;
      case 'policy.deny':
        if (e.id) denied.add(e.id);
        lastDenial = e.reason;
        say(`    ${c('✗', 'red')} denied: ${oneLine(e.reason, width - 14)}`);
        running = null;
        return;
      case 'tool.result': {
        running = null;
        if (denied.delete(e.id) || (lastDenial !== null && e.isError && e.content === lastDenial)) {
          clear();
          lastDenial = null;
          return;
        }
        lastDenial = null;
        const head = outputHead(e.content, n, width - 6);
        const lines = [`    ${e.isError ? c('✗', 'red') : c('✓', 'green')} ${Math.round(e.durationMs)} ms`];
        for (const l of head.lines) lines.push(`    ${c('│', 'dim')} ${l}`);
        if (head.more) lines.push(`    ${c('│', 'dim')} ${c(`… ${head.more} more line${head.more === 1 ? '' : 's'}`, 'dim')}`);
        say(lines.join('\n'));
        return;
      }
      case 'model.error':
        running = null;
        flushHeld();
        clear();
        toErr(`clawpod: ${c(safeText(e.error), 'red')}`);
        return;
      default:
        return;
    }
  }

  function onEvent(e: RunEvent): void {
    if (e.source === 'agent') return onAgent(e.event);
    if (e.source === 'proxy') {
      // An exchange inside a terminated TLS tunnel is counted once, as its tunnel.
      if (e.data.terminated === true) return;
      if (e.type === 'net.allow') tally.allowed++;
      if (e.type === 'net.deny') tally.denied++;
      return;
    }
    if (e.source === 'pod' && e.type === 'limit.hit') {
      tally.limits.push(String(e.data.cap));
      return;
    }
    if (e.source === 'run' && e.type === 'run.context') {
      toErr(contextLine(e.data, o.colour));
      return;
    }
    if (e.source === 'run' && e.type === 'run.end') {
      running = null;
      clear();
      // A face may pass run.end on again with what it adds: the facts are merged, never lost.
      end = { ...end, ...e.data };
      // The last turn's text, held off a terminal, is the answer.
      if (held) {
        answer = held;
        held = '';
      }
    }
  }

  function writeAnswer(): void {
    if (answerWritten || o.isTTY) return;
    answerWritten = true;
    // The answer is for a script or a file: redacted already, and kept as the model wrote it.
    if (answer) o.out.write(answer.endsWith('\n') ? answer : `${answer}\n`);
  }

  const podStderr = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      clear();
      lineStart();
      const text = chunk.toString();
      o.err.write(text);
      if (text.endsWith('\n')) draw();
      cb();
    },
  });

  return {
    onEvent,
    onNotice: (line) => toErr(safeText(line)),
    podStderr,
    summary(extra = {}) {
      if (!end) return;
      clear();
      writeAnswer();
      const outcome = end.outcome as AgentOutcome | undefined;
      if (!outcome) return;
      if (trace === o.out) lineStart();
      o.err.write(
        summaryText(
          {
            id: String(end.id ?? ''),
            outcome,
            ms: extra.ms ?? Number(end.durationMs ?? 0),
            filesChanged: Number(end.filesChanged ?? 0),
            stat: extra.stat,
            ...tally,
            interrupted: end.interrupted === true,
          },
          o.colour,
        ),
      );
    },
  };
}

/** The summary from the store and the audit log (for callers that did not watch the events). */
export function taskSummary(ctx: Context, id: string, o: AgentOutcome, ms: number): string {
  const f: SummaryFacts = { id, outcome: o, ms, filesChanged: 0, allowed: 0, denied: 0, limits: [] };
  try {
    const run = ctx.store().getRun(id);
    f.filesChanged = run?.filesChanged ?? 0;
    f.stat = changeStat(ctx, id);
    for (const e of readAudit(run?.auditPath ?? '')) {
      if (e.data.terminated === true) continue;
      if (e.type === 'net.allow') f.allowed++;
      if (e.type === 'net.deny') f.denied++;
      if (e.type === 'limit.hit') f.limits.push(String(e.data.cap));
    }
  } catch {
    f.limits = [];
  }
  return summaryText(f);
}
