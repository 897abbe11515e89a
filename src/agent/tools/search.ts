// glob and grep, run in the pod: the shell and grep walk the pod's view of the tree, so a symlink
// in the workspace leads only where the pod can already go.
import type { Tool } from '../types.js';
import { defineTool, fail, ok, optStr, str, ToolInputError, WORKSPACE } from './common.js';

export const GLOB_MAX_ENTRIES = 1000;
export const GREP_MAX_LINES = 500;
export const GREP_MAX_LINE_CHARS = 400;
const SEARCH_TIMEOUT_MS = 60_000;
const POD_OUTPUT_BYTES = 4 << 20;

// bash's globstar gives `**` its usual meaning; IFS= keeps a pattern with spaces one word, and an
// unquoted expansion globs without ever evaluating the pattern as code. Existing non-directories
// only: a literal pattern that names nothing must not come back as a match.
// The workspace directory is the last argument, never inside the script (a host path may hold any character).
const GLOB_SCRIPT =
  'shopt -s globstar nullglob; cd "$2" || exit 2; IFS=; set -- $1; ' +
  'for f in "$@"; do if { [ -e "$f" ] || [ -L "$f" ]; } && [ ! -d "$f" ]; then printf "%s\\0" "$f"; fi; done';

// With no path operand, grep -r searches "." and prints paths without a "./" prefix.
const GREP_FLAGS = '-rnE -I --color=never --exclude-dir=.git';
const GREP_SCRIPT = `cd "$1" || exit 2; shift; if [ $# -ge 2 ]; then exec grep ${GREP_FLAGS} -e "$1" -- "$2"; fi; exec grep ${GREP_FLAGS} -e "$1"`;

export function globTool(dir = WORKSPACE): Tool {
  return defineTool(
    {
      name: 'glob',
      description: `List files in the sandbox matching a glob pattern relative to ${dir} (bash syntax; ** matches any depth, e.g. "src/**/*.ts"). Sorted; at most ${GLOB_MAX_ENTRIES} paths. Hidden files only when the pattern names them (e.g. ".*").`,
      input_schema: { type: 'object', properties: { pattern: { type: 'string', description: 'Glob pattern, e.g. **/*.py' } }, required: ['pattern'] },
    },
    async (input, ops) => {
      const pattern = str(input, 'pattern');
      if (pattern.includes('\0')) throw new ToolInputError('field "pattern" contains a NUL byte');
      const r = await ops.exec(['bash', '-c', GLOB_SCRIPT, 'bash', pattern, dir], { timeoutMs: SEARCH_TIMEOUT_MS, maxOutput: POD_OUTPUT_BYTES });
      if (r.timedOut) return fail(`glob ${pattern} timed out after ${SEARCH_TIMEOUT_MS / 1000} s; use a narrower pattern`);
      if (r.exitCode === 127) return fail('glob needs bash in the sandbox; use find through the bash tool instead');
      if (r.exitCode !== 0) return fail(`glob failed: ${r.stderr.toString().trim() || `exit ${r.exitCode}`}`);
      return ok(formatGlob(r.stdout, r.truncated, pattern));
    },
  );
}

/** NUL-separated paths, sorted by code point (stable across locales), bounded with a note. */
export function formatGlob(out: Buffer, podTruncated: boolean, pattern: string): string {
  const parts = out.toString('utf8').split('\0');
  // The last piece is empty after a final NUL, or a cut path when the pod dropped output.
  parts.pop();
  if (parts.length === 0) return podTruncated ? 'too many matches to list; use a narrower pattern' : `no files match ${pattern}`;
  const paths = parts.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const shown = paths.slice(0, GLOB_MAX_ENTRIES);
  const more = paths.length - shown.length;
  if (more === 0 && !podTruncated) return shown.join('\n');
  return `${shown.join('\n')}\n[output truncated: ${podTruncated ? 'more than ' : ''}${more} more paths; use a narrower pattern]`;
}

export function grepTool(dir = WORKSPACE): Tool {
  return defineTool(
    {
      name: 'grep',
      description: `Search file contents in the sandbox with an extended regular expression (grep -rnE; binary files and .git skipped). path defaults to ${dir}. Returns file:line:text, at most ${GREP_MAX_LINES} lines.`,
      input_schema: {
        type: 'object',
        properties: {
          pattern: { type: 'string', description: 'Extended regular expression (grep -E syntax)' },
          path: { type: 'string', description: `File or directory to search, relative to ${dir} or absolute (default: ${dir})` },
        },
        required: ['pattern'],
      },
    },
    async (input, ops) => {
      const pattern = str(input, 'pattern');
      const where = optStr(input, 'path');
      if (pattern.includes('\0')) throw new ToolInputError('field "pattern" contains a NUL byte');
      if (where?.includes('\0')) throw new ToolInputError('field "path" contains a NUL byte');
      const argv = ['sh', '-c', GREP_SCRIPT, 'sh', dir, pattern, ...(where === undefined ? [] : [where])];
      const r = await ops.exec(argv, { timeoutMs: SEARCH_TIMEOUT_MS, maxOutput: POD_OUTPUT_BYTES });
      const lines = formatGrep(r.stdout, r.truncated);
      if (r.timedOut) return fail(`grep timed out after ${SEARCH_TIMEOUT_MS / 1000} s; narrow the path${lines ? `\n${lines}` : ''}`);
      if (r.exitCode === 1) return ok(`no matches for ${pattern} in ${where ?? dir}`);
      const errors = r.stderr.toString().trim();
      // grep answers 2 both for a bad pattern and for one unreadable file among matches.
      if (r.exitCode !== 0 && !lines) return fail(`grep failed: ${errors || `exit ${r.exitCode}`}`);
      return ok(errors ? `${lines}\n[grep: ${errors.slice(0, 2000)}]` : lines);
    },
  );
}

/** Matching lines, each cut to a readable length (minified files), at most GREP_MAX_LINES. */
export function formatGrep(out: Buffer, podTruncated: boolean): string {
  const lines = out.toString('utf8').split('\n');
  if (lines[lines.length - 1] === '' || podTruncated) lines.pop();
  const shown = lines.slice(0, GREP_MAX_LINES).map((l) => (l.length > GREP_MAX_LINE_CHARS ? `${l.slice(0, GREP_MAX_LINE_CHARS)} [line cut]` : l));
  const more = lines.length - shown.length;
  if (more === 0 && !podTruncated) return shown.join('\n');
  return `${shown.join('\n')}\n[output truncated: ${podTruncated ? 'more than ' : ''}${more} more lines; narrow the pattern or path]`;
}
