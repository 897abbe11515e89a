// File tools, run in the pod like every other tool: a path (or a symlink in the workspace) is
// resolved by the pod's kernel in the pod's mount namespace, so it can only ever reach what the
// pod itself can see. Content travels as argv (the executor has no stdin for commands).
import type { PodOps, Tool } from '../types.js';
import { defineTool, fail, formatBytes, looksBinary, ok, podPath, str, ToolInputError, utf8Chunks, WORKSPACE } from './common.js';

export const READ_MAX_LINES = 2000;
export const READ_MAX_BYTES = 256 * 1024;
/** Content over this is refused: it must fit in argv with room to spare (the frame is < 1 MiB). */
export const WRITE_MAX_BYTES = 900 * 1024;
/** One argv element is capped by the kernel at 128 KiB (MAX_ARG_STRLEN). */
const ARG_CHUNK_BYTES = 100 * 1024;
const FILE_TIMEOUT_MS = 30_000;

// Size first (a line of its own), then at most N bytes: one round trip, bounded even for /dev/zero.
const READ_SCRIPT =
  'if [ -d "$1" ]; then echo "$1 is a directory (list it with glob or bash)" >&2; exit 3; fi; ' +
  '[ -e "$1" ] || { echo "$1: no such file or directory" >&2; exit 2; }; ' +
  's=$(stat -L -c %s -- "$1") || exit 2; [ -r "$1" ] || { echo "$1: permission denied" >&2; exit 2; }; ' +
  'printf "%s\\n" "$s"; exec head -c "$2" -- "$1"';

// The content arrives in chunks ($2...), printed back to back by the shell's own printf.
const WRITE_SCRIPT = 'f=$1; shift; mkdir -p -- "$(dirname -- "$f")" && printf %s "$@" > "$f"';

const CAT_SCRIPT = '[ -f "$1" ] || { echo "$1: no such file (or not a regular file)" >&2; exit 2; }; exec cat -- "$1"';

export function readFileTool(dir = WORKSPACE): Tool {
  return defineTool(
    {
      name: 'read_file',
      description: `Read a text file in the sandbox (relative to ${dir}, or an absolute path in the sandbox). Returns numbered lines like cat -n; at most the first ${READ_MAX_LINES} lines / ${READ_MAX_BYTES / 1024} KiB.`,
      input_schema: { type: 'object', properties: { path: { type: 'string', description: `File path, relative to ${dir} or absolute` } }, required: ['path'] },
    },
    async (input, ops) => {
      const file = podPath(str(input, 'path'), 'path', dir);
      const r = await ops.exec(['sh', '-c', READ_SCRIPT, 'sh', file, String(READ_MAX_BYTES)], { timeoutMs: FILE_TIMEOUT_MS, maxOutput: READ_MAX_BYTES + 64 });
      if (r.timedOut) return fail(`reading ${file} timed out`);
      const nl = r.stdout.indexOf(10);
      if (r.exitCode !== 0 || nl < 0) return fail(r.stderr.toString().trim() || `cannot read ${file} (exit ${r.exitCode})`);
      const size = Number(r.stdout.subarray(0, nl).toString());
      const data = r.stdout.subarray(nl + 1);
      if (looksBinary(data)) return fail(`${file} is a binary file (${formatBytes(size)}); not shown`);
      if (data.length === 0) return ok(size === 0 ? `(${file} is empty)` : `(${file}: nothing read)`);
      return ok(numberLines(data.toString('utf8'), size, data.length, file));
    },
  );
}

/** cat -n style, cut at READ_MAX_LINES, with a note saying what was left out and how to get it. */
export function numberLines(text: string, size: number, readBytes: number, file: string): string {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const shown = lines.slice(0, READ_MAX_LINES);
  const out = shown.map((l, i) => `${String(i + 1).padStart(6)}\t${l}`).join('\n');
  if (lines.length <= READ_MAX_LINES && readBytes >= size) return out;
  const next = shown.length + 1;
  return (
    `${out}\n[file truncated: showed lines 1-${shown.length} of a ${formatBytes(size)} file; ` +
    `read further with bash, e.g. sed -n '${next},${next + READ_MAX_LINES - 1}p' ${file}]`
  );
}

export function writeFileTool(dir = WORKSPACE): Tool {
  return defineTool(
    {
      name: 'write_file',
      description: `Create or overwrite a text file in the sandbox (parent directories are created). At most ${WRITE_MAX_BYTES / 1024} KiB, no NUL bytes.`,
      input_schema: {
        type: 'object',
        properties: {
          path: { type: 'string', description: `File path, relative to ${dir} or absolute` },
          content: { type: 'string', description: 'The whole new content of the file' },
        },
        required: ['path', 'content'],
      },
    },
    async (input, ops) => {
      const file = podPath(str(input, 'path'), 'path', dir);
      const content = str(input, 'content', { allowEmpty: true });
      const bytes = await writePodFile(ops, file, content);
      return ok(`wrote ${bytes} bytes to ${file}`);
    },
  );
}

/** Writes content to a file in the pod; throws (as input errors) what the model can fix. */
async function writePodFile(ops: PodOps, file: string, content: string): Promise<number> {
  if (content.includes('\0')) throw new ToolInputError('content contains a NUL byte; only text files can be written');
  const bytes = Buffer.byteLength(content, 'utf8');
  if (bytes > WRITE_MAX_BYTES)
    throw new ToolInputError(`content is ${formatBytes(bytes)}, over the ${formatBytes(WRITE_MAX_BYTES)} limit; write it in parts with bash (e.g. >> appends)`);
  const r = await ops.exec(['sh', '-c', WRITE_SCRIPT, 'sh', file, ...utf8Chunks(content, ARG_CHUNK_BYTES)], {
    timeoutMs: FILE_TIMEOUT_MS,
    maxOutput: 64 * 1024,
  });
  if (r.timedOut) throw new Error(`writing ${file} timed out`);
  if (r.exitCode !== 0) throw new Error(`cannot write ${file}: ${r.stderr.toString().trim() || `exit ${r.exitCode}`}`);
  return bytes;
}

export function editFileTool(dir = WORKSPACE): Tool {
  return defineTool(
    {
      name: 'edit_file',
      description:
        'Replace one exact occurrence of old_string with new_string in a text file in the sandbox. old_string must occur exactly once: include enough surrounding context to make it unique.',
      input_schema: {
        type: 'object',
        properties: {
          path: { type: 'string', description: `File path, relative to ${dir} or absolute` },
          old_string: { type: 'string', description: 'The exact text to replace (must occur exactly once)' },
          new_string: { type: 'string', description: 'The replacement text' },
        },
        required: ['path', 'old_string', 'new_string'],
      },
    },
    async (input, ops) => {
      const file = podPath(str(input, 'path'), 'path', dir);
      const oldString = str(input, 'old_string');
      const newString = str(input, 'new_string', { allowEmpty: true });
      if (oldString === newString) throw new ToolInputError('old_string and new_string are the same; nothing to change');
      const r = await ops.exec(['sh', '-c', CAT_SCRIPT, 'sh', file], { timeoutMs: FILE_TIMEOUT_MS, maxOutput: WRITE_MAX_BYTES + 1 });
      if (r.timedOut) return fail(`reading ${file} timed out`);
      if (r.exitCode !== 0) return fail(r.stderr.toString().trim() || `cannot read ${file} (exit ${r.exitCode})`);
      if (r.truncated || r.stdout.length > WRITE_MAX_BYTES)
        return fail(`${file} is over ${formatBytes(WRITE_MAX_BYTES)}; edit it with bash (e.g. sed) instead`);
      if (looksBinary(r.stdout)) return fail(`${file} is a binary file; edit_file changes text files only`);
      const text = r.stdout.toString('utf8');
      const count = countOccurrences(text, oldString);
      if (count !== 1) {
        return fail(
          count === 0
            ? `old_string was not found in ${file} (0 matches); read the file and copy the text exactly`
            : `old_string occurs ${count} times in ${file}; it must occur exactly once: add surrounding context`,
        );
      }
      const at = text.indexOf(oldString);
      await writePodFile(ops, file, text.slice(0, at) + newString + text.slice(at + oldString.length));
      return ok(`replaced 1 occurrence in ${file}`);
    },
  );
}

/** Occurrences, overlapping ones too: "aa" in "aaa" is two, since either could be the one meant. */
export function countOccurrences(text: string, needle: string): number {
  let n = 0;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) n++;
  return n;
}
