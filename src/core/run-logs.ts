// What a run kept of its output (`runs logs`): the pod's stdout and stderr, and for agent runs
// the transcript and the final answer. The run's lifecycle writes them already redacted and
// capped (stdout.log/stderr.log at 8 MiB each); every byte is the pod's or the model's, so the
// faces make them inert before a terminal sees them.
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { RunRecord } from '../store/runs.js';
import { UserError } from './errors.js';

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

/** A file's text in pieces of about 1 MiB, UTF-8 sequences never split: logs of any size. */
export function* textChunks(file: string): Generator<string> {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const dec = new StringDecoder('utf8');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) yield dec.write(buf.subarray(0, n));
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
  | { type: 'unreadable'; line: number };

/** The transcript's records, one per line; a line that is not one is named, never fatal. */
export function* transcriptRecords(file: string): Generator<TranscriptRecord> {
  let held = '';
  let line = 0;
  const parse = (text: string): TranscriptRecord | null => {
    line++;
    if (text.trim() === '') return null;
    try {
      const r = JSON.parse(text) as Record<string, unknown>;
      if (r.type === 'text' && typeof r.text === 'string') return { type: 'text', text: r.text };
      if (r.type === 'tool.call' && typeof r.name === 'string') return { type: 'tool.call', name: r.name, input: r.input };
      if (r.type === 'tool.result' && typeof r.name === 'string') {
        return {
          type: 'tool.result',
          name: r.name,
          isError: r.isError === true,
          content: typeof r.content === 'string' ? r.content : JSON.stringify(r.content ?? ''),
        };
      }
    } catch {
      /* named below */
    }
    return { type: 'unreadable', line };
  };
  for (const chunk of textChunks(file)) {
    const parts = (held + chunk).split('\n');
    held = parts.pop() as string;
    for (const p of parts) {
      const r = parse(p);
      if (r) yield r;
    }
  }
  const r = held ? parse(held) : null;
  if (r) yield r;
}

/** A transcript as a person reads it: the agent's text, each tool call and its result. */
export function renderTranscript(r: TranscriptRecord): string {
  switch (r.type) {
    case 'text':
      return r.text.endsWith('\n') ? r.text : `${r.text}\n`;
    case 'tool.call':
      return `▸ ${r.name} ${JSON.stringify(r.input ?? {})}\n`;
    case 'tool.result': {
      const body = r.content
        .replace(/\n+$/, '')
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n');
      return `  ${r.isError ? '✗' : '✓'} ${r.name}${body ? `\n${body}` : ''}\n`;
    }
    default:
      return `[transcript line ${r.line} is not a record clawpod wrote]\n`;
  }
}
