// What a run kept of its output (`runs logs`): the pod's stdout and stderr, and for agent runs
// the transcript and the final answer. The run's lifecycle writes them already redacted and
// capped (stdout.log/stderr.log at 8 MiB each); every byte is the pod's or the model's, so the
// faces make them inert before a terminal sees them. The transcript is rendered here, inert
// whatever it is written to: the model's lines and the tools' output each start with a marker
// no line of clawpod's own starts with, so neither can pass for a tool call of clawpod's.
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { RunRecord } from '../store/runs.js';
import { UserError } from './errors.js';
import { jsonInert } from './inert-json.js';
import { LOG_CAP } from './lifecycle.js';
import { safeText } from './terminal.js';

export const LOG_FILES = { stdout: 'stdout.log', stderr: 'stderr.log', transcript: 'transcript.jsonl', answer: 'answer.txt' } as const;
export type LogStream = keyof typeof LOG_FILES;
export const LOG_STREAMS = Object.keys(LOG_FILES) as LogStream[];

/** The kept output files of a run that exist, by stream. */
export function keptLogs(run: RunRecord): Partial<Record<LogStream, string>> {
  const out: Partial<Record<LogStream, string>> = {};
  if (!run.runDir) return out;
  for (const s of LOG_STREAMS) {
    const f = path.join(run.runDir, LOG_FILES[s]);
    // Only regular files: a run dir is clawpod's, but a link there is never followed.
    if (fs.lstatSync(f, { throwIfNoEntry: false })?.isFile()) out[s] = f;
  }
  return out;
}

/** Which streams `runs logs` shows: those asked for (each must exist), else all that exist. */
export function pickLogs(run: RunRecord, asked: LogStream[]): { stream: LogStream; file: string }[] {
  const kept = keptLogs(run);
  if (asked.length > 0) {
    for (const s of asked) {
      if (!kept[s]) throw new UserError(`run ${run.id} kept no ${s === 'answer' || s === 'transcript' ? s : `${s} output`}${noneWhy(run, s)}`);
    }
    return asked.map((s) => ({ stream: s, file: kept[s] as string }));
  }
  // An agent's transcript already holds its answer: the answer alone only when there is no transcript.
  const streams = kept.transcript ? LOG_STREAMS.filter((s) => s !== 'answer') : LOG_STREAMS;
  return streams.filter((s) => kept[s]).map((s) => ({ stream: s, file: kept[s] as string }));
}

function noneWhy(run: RunRecord, s: LogStream): string {
  if ((s === 'transcript' || s === 'answer') && run.kind !== 'run') return ' (only agent runs, clawpod run, have one)';
  return ` (runs from before clawpod kept output have none; clawpod runs show ${run.id} lists what it kept)`;
}

/** A file's text in pieces of about 1 MiB, UTF-8 sequences never split: logs of any size.
 *  limit: stop after that many bytes. */
export function* textChunks(file: string, limit = Number.POSITIVE_INFINITY): Generator<string> {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const dec = new StringDecoder('utf8');
    const buf = Buffer.allocUnsafe(1 << 20);
    let left = limit;
    for (let n = fs.readSync(fd, buf, 0, Math.min(buf.length, left), null); n > 0; n = fs.readSync(fd, buf, 0, Math.min(buf.length, left), null)) {
      left -= n;
      yield dec.write(buf.subarray(0, n));
      if (left <= 0) break;
    }
    const rest = dec.end();
    if (rest) yield rest;
  } finally {
    fs.closeSync(fd);
  }
}

export type TranscriptRecord =
  | { type: 'text'; text: string }
  | { type: 'tool.call'; name: string; input: unknown }
  | { type: 'tool.result'; name: string; isError: boolean; content: string }
  | { type: 'policy.deny'; tool: string; reason: string }
  | { type: 'model.error'; error: string }
  | { type: 'cut'; reason: string }
  | { type: 'unreadable'; line: number };

const str = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v ?? ''));

/** One line of the transcript as a record, null for a blank one. */
function parseRecord(text: string, line: number): TranscriptRecord | null {
  if (text.trim() === '') return null;
  try {
    const r = JSON.parse(text) as Record<string, unknown>;
    if (r.type === 'text' && typeof r.text === 'string') return { type: 'text', text: r.text };
    if (r.type === 'tool.call' && typeof r.name === 'string') return { type: 'tool.call', name: r.name, input: r.input };
    if (r.type === 'tool.result' && typeof r.name === 'string') {
      return { type: 'tool.result', name: r.name, isError: r.isError === true, content: str(r.content) };
    }
    if (r.type === 'policy.deny') return { type: 'policy.deny', tool: str(r.tool), reason: str(r.reason) };
    if (r.type === 'model.error') return { type: 'model.error', error: str(r.error) };
    if (r.type === 'cut' && typeof r.reason === 'string') return { type: 'cut', reason: r.reason };
  } catch {
    /* named below */
  }
  return { type: 'unreadable', line };
}

/** The transcript's records, one per line; a line that is not one is named, never fatal.
 *  limit: read that many bytes at most, the rest named in a closing cut record. */
export function* transcriptRecords(file: string, limit = Number.POSITIVE_INFINITY): Generator<TranscriptRecord> {
  const size = fs.lstatSync(file).size;
  let held = '';
  let line = 0;
  for (const chunk of textChunks(file, limit)) {
    const parts = (held + chunk).split('\n');
    held = parts.pop() as string;
    for (const p of parts) {
      const r = parseRecord(p, ++line);
      if (r) yield r;
    }
  }
  if (size > limit) {
    yield { type: 'cut', reason: `clawpod read the first ${limit} bytes of ${size}; see ${file}` };
    return;
  }
  const r = held ? parseRecord(held, ++line) : null;
  if (r) yield r;
}

/** A file's text, at most `limit` bytes of it; what is left out is named at its end. */
export function cappedText(file: string, limit: number): string {
  const size = fs.lstatSync(file).size;
  const text = [...textChunks(file, limit)].join('');
  return size > limit ? `${text}\n[clawpod: ${size - limit} more bytes not shown; see ${file}]\n` : text;
}

/** The most of one stream `runs logs --json` reads: every file clawpod keeps is within it (the
 *  cap and its closing note); a bigger one (a run from before the caps) is cut, never fatal. */
export const JSON_STREAM_CAP = LOG_CAP + 64 * 1024;

/** `runs logs --json`: every stream asked for (none: all that were kept, the answer too) as
 *  data, each null when not kept, each read up to JSON_STREAM_CAP. */
export function logsDocument(run: RunRecord, asked: LogStream[]): Record<string, unknown> {
  const doc: Record<string, unknown> = { id: run.id, kind: run.kind };
  for (const s of LOG_STREAMS) doc[s] = null;
  const picked = asked.length > 0 ? pickLogs(run, asked) : Object.entries(keptLogs(run)).map(([stream, file]) => ({ stream, file }));
  for (const { stream, file } of picked) {
    doc[stream] = stream === 'transcript' ? [...transcriptRecords(file, JSON_STREAM_CAP)] : cappedText(file, JSON_STREAM_CAP);
  }
  return doc;
}

/** How a face shows a transcript: colour for clawpod's marks and the tools' output (the text is
 *  never changed), and the terminal's width, so that no line wraps onto a line of its own. */
export interface TranscriptStyle {
  paint?: (s: string, part: 'call' | 'ok' | 'error' | 'output' | 'mark') => string;
  width?: number;
}

/** What starts every line of the model's text; no line of clawpod's own starts with it. */
export const MODEL_MARK = '│ ';
/** What starts every line of a tool's output (the pod's bytes), below its ✓ or ✗ line. */
export const OUTPUT_MARK = '    ┊ ';
/** What starts the rest of a line too wide for the terminal, at the line's own indent. */
const CONTINUED = '┆ ';

/** A tool's name: plain when it is a plain name, else quoted with every newline and control
 *  character escaped. */
function nameText(s: string): string {
  return /^[\w.:-]{1,64}$/.test(s) ? s : jsonInert(JSON.stringify(s));
}

/** Free text (a reason, an error) on one line: inert, its newlines and tabs shown as escapes. */
function oneLine(s: string): string {
  return safeText(s).replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

/** An inert line in pieces of at most `room` columns. Anything but ASCII counts as two (a
 *  tab as eight), so a piece never wraps on the screen: the rest is a piece of its own. */
function pieces(line: string, room: number | undefined): string[] {
  if (room === undefined) return [line];
  const out: string[] = [];
  let cur = '';
  let cols = 0;
  for (const ch of line) {
    const w = ch === '\t' ? 8 : ch < '\x80' ? 1 : 2;
    if (cols + w > room && cur) {
      out.push(cur);
      cur = '';
      cols = 0;
    }
    cur += ch;
    cols += w;
  }
  out.push(cur);
  return out;
}

/** Lines of text, each after `mark` (its pieces after the same indent and CONTINUED), inert. */
function marked(text: string, mark: string, style: TranscriptStyle, output: boolean): string {
  const body = text.replace(/\n+$/, '');
  if (body === '') return '';
  const paint = style.paint ?? ((s: string) => s);
  const indent = mark.slice(0, mark.length - mark.trimStart().length);
  const room = style.width === undefined ? undefined : Math.max(16, style.width - mark.length);
  let out = '';
  for (const line of body.split('\n')) {
    pieces(safeText(line), room).forEach((p, i) => {
      const lead = i === 0 ? mark : `${indent}${CONTINUED}`;
      out += `${paint(lead.trimEnd(), 'mark')}${p ? ` ${output ? paint(p, 'output') : p}` : ''}\n`;
    });
  }
  return out;
}

/** One line of clawpod's, the rest continued below it; painted as `part`: its first character
 *  (the ▸, ✓ or ✗), or all of it when `whole` (a note). */
function own(line: string, part: 'call' | 'ok' | 'error' | 'mark', style: TranscriptStyle, whole = false): string {
  const paint = style.paint ?? ((s: string) => s);
  const indent = line.slice(0, line.length - line.trimStart().length);
  const room = style.width === undefined ? undefined : Math.max(16, style.width - indent.length - CONTINUED.length);
  const [first, ...rest] = pieces(line.trimStart(), room);
  const [glyph, ...tail] = [...first];
  let out = whole ? `${indent}${paint(first, part)}\n` : `${indent}${paint(glyph, part)}${tail.join('')}\n`;
  for (const p of rest) out += `${indent}${paint(CONTINUED.trimEnd(), 'mark')} ${whole ? paint(p, part) : p}\n`;
  return out;
}

/**
 * A transcript as a person reads it: the agent's text, each tool call and its result. Inert
 * wherever it goes (a piped view ends up on a terminal too): the model's and the pod's text
 * with every control character escaped (a \r cannot return over a marker), a tool's name
 * quoted when it is not a plain name. clawpod's own lines start with ▸, "  ✓", "  ✗" or "[";
 * the model's with │ and the tools' output with "    ┊", and a line too wide for the terminal
 * goes on after ┆, so neither can imitate a line of clawpod's.
 */
export function renderTranscript(r: TranscriptRecord, style: TranscriptStyle = {}): string {
  switch (r.type) {
    case 'text':
      return marked(r.text, MODEL_MARK, style, false);
    case 'tool.call':
      return own(`▸ ${nameText(r.name)} ${jsonInert(JSON.stringify(r.input ?? {}))}`, 'call', style);
    case 'tool.result':
      return own(`  ${r.isError ? '✗' : '✓'} ${nameText(r.name)}`, r.isError ? 'error' : 'ok', style) + marked(r.content, OUTPUT_MARK, style, true);
    case 'policy.deny':
      return own(`  ✗ ${nameText(r.tool)} denied: ${oneLine(r.reason)}`, 'error', style);
    case 'model.error':
      return own(`[model error: ${oneLine(r.error)}]`, 'error', style, true);
    case 'cut':
      return own(`[${oneLine(r.reason)}]`, 'mark', style, true);
    default:
      return `[transcript line ${r.line} is not a record clawpod wrote]\n`;
  }
}
