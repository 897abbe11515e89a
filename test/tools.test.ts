// The agent's tools against a real live pod: every tool's happy and error paths, and that a
// symlink in the workspace cannot carry a tool to the host.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createTools, toolByName } from '../src/agent/tools/index.js';
import type { Tool, ToolResult } from '../src/agent/types.js';
import { createBwrapBackend } from '../src/pod/bwrap.js';
import { LivePod } from '../src/pod/live.js';
import type { Rules } from '../src/policy/types.js';
import { tmpDir, workspace } from './helpers.js';

const rules: Rules = {
  resources: { cpus: 1, memoryBytes: 256 << 20, pids: 128, timeoutMs: 120_000, diskBytes: 64 << 20 },
  workspace: 'overlay',
  mounts: [],
  network: { allow: [], deny: [], hosts: {} },
  secrets: [],
  env: {},
  tools: {},
  source: 'test',
};

const tools = createTools();
let home: string;
let ws: string;
let outside: string;
let live: LivePod;

before(async () => {
  home = tmpDir('home');
  outside = tmpDir('outside');
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'host-only secret\n');
  ws = workspace({
    'notes.txt': 'alpha\nbeta\n',
    'src/main.ts': 'export const answer = 42;\n',
    'src/deep/util.ts': 'export function helper() { return "needle"; }\n',
    'src/deep/data.js': 'const x = "needle";\n',
    'dup.txt': 'same\nsame\nonce\n',
  });
  // Links a careless host-side tool would follow out of the workspace.
  fs.symlinkSync(outside, path.join(ws, 'out'));
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(ws, 'secret-link'));
  fs.symlinkSync('/etc/shadow', path.join(ws, 'shadow'));
  fs.symlinkSync('/etc/passwd', path.join(ws, 'passwd'));
  const backend = createBwrapBackend({ clawpodHome: home });
  live = await LivePod.start(
    backend,
    { id: `r-tools-${process.pid}`, rules, workspace: ws, changesDir: path.join(home, 'changes'), allowDegraded: false, stdio: 'pipe' },
    () => {},
  );
});
after(async () => {
  await live.close().catch(() => undefined);
});

function call(name: string, input: Record<string, unknown>): Promise<ToolResult> {
  const t: Tool | undefined = toolByName(tools, name);
  assert.ok(t, name);
  return t.run(input, live);
}

function expectOk(r: ToolResult): string {
  assert.equal(r.isError, false, r.content);
  return r.content;
}

function expectError(r: ToolResult, pattern: RegExp): void {
  assert.equal(r.isError, true, `expected an error, got: ${r.content}`);
  assert.match(r.content, pattern);
}

test('bash: runs in /workspace of the pod, labels stderr, reports a non-zero exit code', async () => {
  assert.equal(expectOk(await call('bash', { command: 'pwd; echo $BASH_VERSION | cut -c1' })), '/workspace\n5');
  expectError(await call('bash', { command: 'echo out; echo oops >&2; exit 3' }), /^out\n\[stderr\]\noops\n\[exit code: 3\]$/);
  expectError(await call('bash', { command: 'no-such-cmd-xyz' }), /command not found[\s\S]*\[exit code: 127\]/);
  assert.equal(expectOk(await call('bash', { command: 'true' })), '(no output)');
});

test('bash: a timeout kills the command and is an error result; the pod carries on', async () => {
  const started = Date.now();
  const r = await call('bash', { command: 'echo started; sleep 30', timeout_ms: 400 });
  expectError(r, /timed out after 0\.4 s[\s\S]*started/);
  assert.ok(Date.now() - started < 10_000);
  assert.equal(expectOk(await call('bash', { command: 'echo alive' })), 'alive');
});

test('bash: huge output is cut with a note', async () => {
  const r = await call('bash', { command: 'head -c 1000000 /dev/zero | tr "\\0" a' });
  assert.ok(r.content.length < 70_000);
  assert.match(r.content, /\[output truncated: 912\.6 KiB more\]$/);
});

test('write_file then read_file round-trips unicode and big multi-chunk content, in the pod only', async () => {
  const text = 'héllo wörld ✓ 😀\n第二行\n';
  const wrote = expectOk(await call('write_file', { path: 'new/dir/uni.txt', content: text }));
  assert.equal(wrote, `wrote ${Buffer.byteLength(text)} bytes to /workspace/new/dir/uni.txt`);
  assert.equal(expectOk(await call('read_file', { path: 'new/dir/uni.txt' })), '     1\théllo wörld ✓ 😀\n     2\t第二行');
  assert.equal(expectOk(await call('read_file', { path: '/workspace/new/dir/uni.txt' })), '     1\théllo wörld ✓ 😀\n     2\t第二行');
  const big = `${'ß€😀 line\n'.repeat(30_000)}end`; // ~450 KiB: several argv chunks
  expectOk(await call('write_file', { path: 'big.txt', content: big }));
  const sum = expectOk(await call('bash', { command: 'sha256sum big.txt | cut -d" " -f1' })).trim();
  assert.equal(sum, createHash('sha256').update(big).digest('hex'));
  assert.equal(fs.existsSync(path.join(ws, 'new')), false, 'the host workspace is untouched');
  assert.equal(fs.existsSync(path.join(ws, 'big.txt')), false);
});

test('write_file: NUL bytes, oversized content and unwritable paths are error results', async () => {
  expectError(await call('write_file', { path: 'n.txt', content: 'a\0b' }), /NUL byte/);
  expectError(await call('write_file', { path: 'n.txt', content: 'x'.repeat(950 * 1024) }), /over the 900\.0 KiB limit/);
  expectError(await call('write_file', { path: '/usr/clawpod-test.txt', content: 'x' }), /cannot write \/usr\/clawpod-test\.txt/);
  expectError(await call('write_file', { path: 'src', content: 'x' }), /cannot write \/workspace\/src/);
  expectError(await call('write_file', { content: 'x' }), /missing required field "path"/);
});

test('read_file: missing file, directory and binary file are error results; long files are cut', async () => {
  expectError(await call('read_file', { path: 'nope.txt' }), /nope\.txt: no such file/);
  expectError(await call('read_file', { path: 'src' }), /is a directory/);
  expectError(await call('read_file', { path: '/usr/bin/true' }), /binary file/);
  expectOk(await call('bash', { command: 'seq 1 3000 > long.txt' }));
  const r = expectOk(await call('read_file', { path: 'long.txt' }));
  assert.match(r, /^ {5}1\t1\n/);
  assert.match(r, / 2000\t2000\n\[file truncated: showed lines 1-2000 of a 13\.6 KiB file;/);
  assert.doesNotMatch(r, /\t2001\n/);
  expectError(await call('read_file', { path: 7 }), /"path" must be a string/);
});

test('edit_file: 0 and 2 matches are refused saying how many; 1 match is replaced exactly', async () => {
  expectError(await call('edit_file', { path: 'dup.txt', old_string: 'absent', new_string: 'x' }), /0 matches/);
  expectError(await call('edit_file', { path: 'dup.txt', old_string: 'same', new_string: 'x' }), /occurs 2 times/);
  assert.match(expectOk(await call('edit_file', { path: 'dup.txt', old_string: 'once', new_string: 'twice $& ✓' })), /replaced 1 occurrence/);
  assert.equal(expectOk(await call('bash', { command: 'cat dup.txt; echo "<end>"' })), 'same\nsame\ntwice $& ✓\n<end>');
  expectError(await call('edit_file', { path: 'missing.txt', old_string: 'a', new_string: 'b' }), /no such file/);
  expectError(await call('edit_file', { path: 'dup.txt', old_string: 'same' }), /missing required field "new_string"/);
  assert.equal(fs.readFileSync(path.join(ws, 'dup.txt'), 'utf8'), 'same\nsame\nonce\n', 'the host copy is untouched');
});

test('glob: ** matches at any depth, sorted; no match and shell syntax are handled safely', async () => {
  assert.equal(expectOk(await call('glob', { pattern: 'src/**/*.ts' })), 'src/deep/util.ts\nsrc/main.ts');
  assert.equal(expectOk(await call('glob', { pattern: '**/*.js' })), 'src/deep/data.js');
  assert.equal(expectOk(await call('glob', { pattern: '*.nothing' })), 'no files match *.nothing');
  assert.equal(expectOk(await call('glob', { pattern: 'no-such-literal-file' })), 'no files match no-such-literal-file');
  expectOk(await call('glob', { pattern: '$(touch /tmp/pwned)*; touch /tmp/pwned2' }));
  assert.equal(expectOk(await call('bash', { command: 'ls /tmp/pwned* 2>/dev/null | wc -l' })).trim(), '0', 'the pattern was never run as code');
});

test('grep: matches with file and line, a path narrows it, no match is not an error, a bad regex is', async () => {
  assert.equal(
    expectOk(await call('grep', { pattern: 'need(le)' }))
      .split('\n')
      .sort()
      .join('\n'),
    'src/deep/data.js:1:const x = "needle";\nsrc/deep/util.ts:1:export function helper() { return "needle"; }',
  );
  assert.equal(expectOk(await call('grep', { pattern: 'needle', path: 'src/deep/data.js' })), '1:const x = "needle";\n'.trimEnd());
  assert.match(expectOk(await call('grep', { pattern: '^alpha$', path: '/workspace' })), /^\/workspace\/notes\.txt:1:alpha$/);
  assert.equal(expectOk(await call('grep', { pattern: 'zzz-not-there' })), 'no matches for zzz-not-there in /workspace');
  expectError(await call('grep', { pattern: 'a(' }), /grep failed/);
  expectError(await call('grep', { pattern: 'x', path: 'no/such/dir' }), /No such file/);
});

test('web_fetch: with no hosts allowed the pod has no network, and the result says so', async () => {
  expectError(await call('web_fetch', { url: 'https://example.com/' }), /policy allows no hosts/);
  expectError(await call('web_fetch', { url: 'ftp://example.com/' }), /must be http or https/);
});

test('a symlink in the workspace cannot read or write host files outside the pod', async () => {
  const hostPasswd = fs.readFileSync('/etc/passwd', 'utf8').split('\n').filter(Boolean);
  expectError(await call('read_file', { path: 'secret-link' }), /no such file/);
  expectError(await call('read_file', { path: 'out/secret.txt' }), /no such file/);
  expectError(await call('read_file', { path: 'shadow' }), /no such file/);
  const podPasswd = expectOk(await call('read_file', { path: 'passwd' }));
  assert.ok(
    hostPasswd.some((l) => !podPasswd.includes(l)),
    "the link leads to the pod's own /etc/passwd, not the host's",
  );
  const found = await call('grep', { pattern: 'host-only', path: 'out' });
  assert.doesNotMatch(found.content, /host-only secret/);
  const globbed = await call('glob', { pattern: 'out/*' });
  assert.doesNotMatch(globbed.content, /secret\.txt/);
  await call('write_file', { path: 'secret-link', content: 'overwritten' });
  await call('write_file', { path: 'out/planted.txt', content: 'planted' });
  await call('edit_file', { path: 'secret-link', old_string: 'host-only', new_string: 'edited' });
  await call('bash', { command: 'echo planted > out/by-bash.txt; echo x >> secret-link' });
  assert.deepEqual(fs.readdirSync(outside), ['secret.txt'], 'nothing was planted outside');
  assert.equal(fs.readFileSync(path.join(outside, 'secret.txt'), 'utf8'), 'host-only secret\n');
});
