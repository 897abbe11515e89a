// The audit trail of real runs: complete, verifiable, and any tampering is named by line.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { auditEvents, cli, tmpDir, workspace } from './helpers.js';

let home: string;
before(() => {
  home = tmpDir('home');
});

async function freshRun(): Promise<{ id: string; log: string }> {
  const ws = workspace({ 'a.txt': 'a\n' });
  const r = await cli(['exec', '--', 'sh', '-c', 'echo b > a.txt; echo c > c.txt; echo d > d.txt'], { home, cwd: ws });
  assert.equal(r.code, 0, r.stderr);
  return { id: r.runId!, log: path.join(home, 'runs', r.runId!, 'audit.jsonl') };
}

const lines = (f: string) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean);

describe('audit log of a run', () => {
  test("has the contract shape and the run's story in order", async () => {
    const { id, log } = await freshRun();
    const events = auditEvents(home, id);
    assert.deepEqual(
      events.map((e) => e.type),
      ['run.start', 'exec.start', 'exec.exit', 'file.write', 'file.write', 'file.write', 'run.end'],
    );
    const first = JSON.parse(lines(log)[0]);
    assert.deepEqual(Object.keys(first), ['seq', 'ts', 'run', 'type', 'data', 'prev', 'hash']);
    assert.equal(first.prev, '0'.repeat(64));
    assert.equal(first.seq, 1);
    assert.equal(first.run, id);
    const ok = await cli(['audit', 'verify', id], { home });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /ok, 7 events/);
  });

  test('a flipped byte is caught and its line named', async () => {
    const { id, log } = await freshRun();
    const text = fs.readFileSync(log, 'utf8');
    const third = text.split('\n').slice(0, 2).join('\n').length + 1;
    const at = text.indexOf('"exitCode":0', third);
    assert.ok(at > 0);
    const buf = Buffer.from(text);
    buf[at + '"exitCode":'.length] = '1'.charCodeAt(0);
    fs.writeFileSync(log, buf);
    const r = await cli(['audit', 'verify', id], { home });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /BROKEN at line 3/);
  });

  test('a deleted line is caught and named', async () => {
    const { id, log } = await freshRun();
    const ls = lines(log);
    ls.splice(3, 1);
    fs.writeFileSync(log, `${ls.join('\n')}\n`);
    const r = await cli(['audit', 'verify', id], { home });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /BROKEN at line 4/);
  });

  test('lines cut from the end are caught against the head kept in the run store', async () => {
    const { id, log } = await freshRun();
    const ls = lines(log);
    fs.writeFileSync(log, `${ls.slice(0, -2).join('\n')}\n`);
    const r = await cli(['audit', 'verify', id], { home });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /BROKEN/);
  });

  test('verify --all checks every run and fails if any is broken', async () => {
    const all = await cli(['audit', 'verify', '--all'], { home });
    assert.equal(all.code, 1);
    assert.match(all.stdout, /ok, 7 events/);
    assert.match(all.stdout, /BROKEN/);
    const clean = tmpDir('home');
    const ws = workspace();
    assert.equal((await cli(['exec', '--', 'true'], { home: clean, cwd: ws })).code, 0);
    assert.equal((await cli(['audit', 'verify', '--all'], { home: clean })).code, 0);
  });

  test('audit show prints every event', async () => {
    const { id } = await freshRun();
    const r = await cli(['audit', 'show', id], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 7);
    assert.match(r.stdout, /file\.write .*"sha256":"[0-9a-f]{64}"/);
  });
});
