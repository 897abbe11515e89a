// A hostile review of the review-side commands (decisions log, apply, discard, logs, prune): each
// finding is one line naming the fix, never "internal error", and never a silent loss of record.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { openStore } from '../src/store/runs.js';
import { currentBootId, processStartTime } from '../src/util/proc.js';
import { cli, tmpDir, workspace } from './helpers.js';

async function podRun(home: string, ws: string, script: string): Promise<string> {
  const r = await cli(['exec', '--', 'sh', '-c', script], { home, cwd: ws, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.runId, r.stderr);
  return r.runId;
}

const oneLine = (r: { stderr: string; stdout: string }) => {
  assert.doesNotMatch(r.stderr + r.stdout, /internal error|^\s+at .*\(|node:internal/m);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
};

function setStatus(home: string, id: string, status: string): void {
  const s = openStore(path.join(home, 'clawpod.db'));
  try {
    // Owned by this (live) test process, so the reaper leaves it running.
    s.updateRun(id, { status, pid: process.pid, pidStart: processStartTime(process.pid), hostBootId: currentBootId() } as never);
  } finally {
    s.close();
  }
}

test('F1/F2: a truncated or deleted decision log is refused before anything is written; --reset-decisions records the break', async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'a.txt': 'a\n' });
  const id1 = await podRun(home, ws, 'echo 1 > a.txt');
  assert.equal((await cli(['runs', 'apply', id1], { home })).code, 0);
  const id2 = await podRun(home, ws, 'echo 2 > b.txt');
  assert.equal((await cli(['runs', 'discard', id2], { home })).code, 0);
  const file = path.join(home, 'decisions.jsonl');
  const good = fs.readFileSync(file, 'utf8');
  // Cut to its first line: the next decision must not continue it and move the head.
  fs.writeFileSync(file, `${good.trim().split('\n')[0]}\n`);
  const id3 = await podRun(home, ws, 'echo 3 > c.txt');
  const cut = await cli(['runs', 'apply', id3], { home });
  assert.equal(cut.code, 125, cut.stderr);
  oneLine(cut);
  assert.match(cut.stderr, /decision log .* does not match its recorded head \(2 decision\(s\)/);
  assert.ok(!fs.existsSync(path.join(ws, 'c.txt')), 'nothing written');
  const discard = await cli(['runs', 'discard', id3], { home });
  assert.equal(discard.code, 125);
  oneLine(discard);
  const rm = await cli(['runs', 'rm', id1], { home });
  assert.equal(rm.code, 125);
  oneLine(rm);
  assert.equal((await cli(['audit', 'verify', '--all'], { home })).code, 1, 'the break stays visible');
  // Deleted: the same.
  fs.rmSync(file);
  const gone = await cli(['runs', 'apply', id3], { home });
  assert.equal(gone.code, 125, gone.stderr);
  oneLine(gone);
  assert.match(gone.stderr, /is gone, but 2 decision\(s\) were recorded/);
  assert.ok(!fs.existsSync(path.join(ws, 'c.txt')), 'nothing written');
  assert.ok(!fs.existsSync(file), 'no new log started silently');
  // The documented recovery: a new log whose first event names the old head.
  const reset = await cli(['runs', 'apply', id3, '--reset-decisions'], { home });
  assert.equal(reset.code, 0, reset.stderr);
  const evs = fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(evs[0].type, 'decisions.reset');
  assert.equal(evs[0].data.previous.events, 2);
  assert.equal(evs[1].type, 'decision.apply');
  assert.equal((await cli(['audit', 'verify', id3], { home })).code, 0);
});

test('F2: an unreadable decision log refuses apply with nothing written (no "internal error")', async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'a.txt': 'a\n' });
  const id = await podRun(home, ws, 'echo pod > a.txt');
  fs.mkdirSync(path.join(home, 'decisions.jsonl'));
  const r = await cli(['runs', 'apply', id], { home });
  assert.equal(r.code, 125, r.stderr);
  oneLine(r);
  assert.equal(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8'), 'a\n', 'nothing written');
});

test('F5: apply and discard refuse a running run; "last" names the run it picked', async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'a.txt': 'a\n' });
  const id = await podRun(home, ws, 'echo pod > a.txt');
  setStatus(home, id, 'running');
  for (const sub of ['apply', 'discard']) {
    const r = await cli(['runs', sub, id], { home });
    assert.equal(r.code, 125, `${sub}: ${r.stdout}${r.stderr}`);
    oneLine(r);
    assert.match(r.stderr, new RegExp(`run ${id} is still running; wait for it or stop it`));
  }
  assert.ok(fs.existsSync(path.join(home, 'runs', id, 'changes')), 'the change set stays');
  setStatus(home, id, 'done');
  const d = await cli(['runs', 'discard', 'last'], { home });
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, new RegExp(`\\(last is run ${id}\\) discarded run ${id}`));
});

test('F9: a pending run whose change set is missing says so and how to drop it', async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'a.txt': 'a\n' });
  const id = await podRun(home, ws, 'echo pod > a.txt');
  fs.rmSync(path.join(home, 'runs', id, 'changes'), { recursive: true });
  const r = await cli(['runs', 'apply', id], { home });
  assert.equal(r.code, 125, r.stdout);
  oneLine(r);
  assert.match(r.stderr, /change set .* is missing: the run's record is damaged; drop it with clawpod runs discard/);
  assert.doesNotMatch(r.stdout, /changed nothing/);
});
