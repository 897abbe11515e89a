import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AuditWriter, canonicalJson, GENESIS_PREV, readAudit, verifyAudit } from './chain.js';

const root = mkdtempSync(join(tmpdir(), 'clawpod-audit-test-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshPath = (): string => join(root, `run-${++n}.jsonl`);

/** Writes a closed five-event log and returns its path and raw lines. */
function writeLog(events = 5): { path: string; lines: string[] } {
  const path = freshPath();
  const w = AuditWriter.create(path, 'r-test');
  for (let i = 1; i <= events; i++) w.append('exec.start', { i, cmd: ['echo', `hello ${i}`], nested: { z: 1, a: 2 } });
  w.close();
  const lines = readFileSync(path, 'utf8').split('\n');
  assert.equal(lines.pop(), '');
  return { path, lines };
}

describe('canonicalJson', () => {
  it('is independent of key insertion order, recursively', () => {
    const a = { b: 1, a: { d: [1, { y: 2, x: 1 }], c: 's' } };
    const b = { a: { c: 's', d: [1, { x: 1, y: 2 }] }, b: 1 };
    assert.equal(canonicalJson(a), canonicalJson(b));
    assert.equal(canonicalJson(a), '{"a":{"c":"s","d":[1,{"x":1,"y":2}]},"b":1}');
  });

  it('uses standard JSON escaping and JSON.stringify value rules', () => {
    const v = { q: 'a"b\\c\n\u0001é', u: undefined, arr: [undefined, NaN, -0], d: new Date(0) };
    assert.equal(canonicalJson(v), '{"arr":[null,null,0],"d":"1970-01-01T00:00:00.000Z","q":"a\\"b\\\\c\\n\\u0001é"}');
    assert.deepEqual(JSON.parse(canonicalJson(v)), JSON.parse(JSON.stringify(v)));
  });

  it('rejects cycles and BigInt instead of emitting something unverifiable', () => {
    const c: Record<string, unknown> = {};
    c.self = c;
    assert.throws(() => canonicalJson(c), /circular/);
    assert.throws(() => canonicalJson({ n: 1n }), /BigInt/);
  });
});

describe('AuditWriter + verifyAudit', () => {
  it('round trips: chain from 64 zeros, seq from 1, hash per the contract, file mode 0600', () => {
    const path = freshPath();
    const w = AuditWriter.create(path, 'r-1');
    const e1 = w.append('run.start', { b: 2, a: 1 })!;
    const e2 = w.append('run.end', { code: 0 });
    assert.equal(w.seq, 2);
    assert.equal(w.lastHash, e2.hash);
    w.close();
    w.close(); // idempotent

    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(e1.prev, GENESIS_PREV);
    assert.equal(e1.seq, 1);
    assert.equal(e2.prev, e1.hash);
    for (const e of [e1, e2]) {
      const { hash, ...rest } = e;
      assert.equal(
        hash,
        createHash('sha256')
          .update(e.prev + canonicalJson(rest))
          .digest('hex'),
      );
    }
    const first = readFileSync(path, 'utf8').split('\n')[0];
    assert.match(first, /^\{"seq":1,"ts":"[^"]+","run":"r-1","type":"run.start","data":\{"a":1,"b":2\},"prev":"0{64}","hash":"[0-9a-f]{64}"\}$/);
    assert.deepEqual(verifyAudit(path), { ok: true, count: 2, lastHash: e2.hash });
    assert.deepEqual(readAudit(path), [e1, e2]);
  });

  it('refuses to create over an existing file and to append after close', () => {
    const { path } = writeLog(1);
    assert.throws(() => AuditWriter.create(path, 'r-test'), /EEXIST/);
    const w = AuditWriter.create(freshPath(), 'r-x');
    w.close();
    assert.throws(() => w.append('run.end', {}), /closed/);
  });

  it('names the middle line when one byte of its data is flipped', () => {
    const { path, lines } = writeLog(5);
    lines[2] = lines[2].replace('hello 3', 'hellp 3');
    writeFileSync(path, lines.join('\n') + '\n');
    assert.deepEqual(verifyAudit(path), { ok: false, line: 3, reason: 'hash mismatch' });
  });

  it('catches any single flipped byte and names the line holding it', () => {
    const { path } = writeLog(3);
    const orig = readFileSync(path);
    for (const mask of [0x01, 0x20, 0x80]) {
      let line = 1;
      for (let i = 0; i < orig.length; i++) {
        const bad = Buffer.from(orig);
        bad[i] ^= mask;
        writeFileSync(path, bad);
        const r = verifyAudit(path);
        assert.equal(r.ok, false, `flip 0x${mask.toString(16)} at byte ${i} went unnoticed`);
        assert.equal(r.ok === false && r.line, line, `flip at byte ${i}: ${JSON.stringify(r)}`);
        if (orig[i] === 0x0a) line++;
      }
    }
  });

  it('catches edits JSON.parse hides: a respelled escape or reordered keys', () => {
    const { path, lines } = writeLog(3);
    const orig = [...lines];
    lines[1] = lines[1].replace('hello 2', 'hell\\u006f 2');
    writeFileSync(path, lines.join('\n') + '\n');
    assert.deepEqual(verifyAudit(path), { ok: false, line: 2, reason: 'line is not in canonical form' });
    const { hash, ...rest } = JSON.parse(orig[1]);
    orig[1] = JSON.stringify({ hash, ...rest });
    writeFileSync(path, orig.join('\n') + '\n');
    assert.deepEqual(verifyAudit(path), { ok: false, line: 2, reason: 'line is not in canonical form' });
  });

  it('names the line after the gap when a middle line is deleted', () => {
    const { path, lines } = writeLog(5);
    lines.splice(2, 1);
    writeFileSync(path, lines.join('\n') + '\n');
    const r = verifyAudit(path);
    assert.equal(r.ok, false);
    assert.equal(r.ok === false && r.line, 3);
    assert.match(r.ok === false ? r.reason : '', /seq gap/);
  });

  it('catches a renumbered deletion through prev', () => {
    const { path, lines } = writeLog(4);
    const third = JSON.parse(lines[2]);
    lines.splice(1, 1, lines[2].replace(`"seq":${third.seq}`, '"seq":2'));
    lines.splice(2, 1);
    writeFileSync(path, lines.join('\n') + '\n');
    assert.deepEqual(verifyAudit(path), { ok: false, line: 2, reason: 'prev mismatch: does not chain to the line before' });
  });

  it('catches a truncated final line, even one missing only its newline', () => {
    const { path } = writeLog(3);
    const full = readFileSync(path);
    writeFileSync(path, full.subarray(0, full.length - 20));
    assert.deepEqual(verifyAudit(path), { ok: false, line: 3, reason: 'truncated final line (no newline)' });
    writeFileSync(path, full.subarray(0, full.length - 1));
    assert.equal(verifyAudit(path).ok, false);
    assert.equal(readAudit(path).length, 2, 'readAudit skips the torn line');
  });

  it('catches lines from another run', () => {
    const { path } = writeLog(2);
    assert.deepEqual(verifyAudit(path, { runId: 'r-other' }), {
      ok: false,
      line: 1,
      reason: 'run id mismatch: expected r-other, found r-test',
    });
  });

  it('applies the redact hook before hashing, and fails closed on bad output', () => {
    const path = freshPath();
    const redact = (s: string): string => s.replaceAll('s3cr3t', '[REDACTED]');
    const w = AuditWriter.create(path, 'r-red', { redact });
    const e = w.append('secret.use', { name: 'TOKEN', header: 'Bearer s3cr3t' })!;
    assert.equal(e.data.header, 'Bearer [REDACTED]');
    w.close();
    assert.ok(!readFileSync(path, 'utf8').includes('s3cr3t'));
    assert.equal(verifyAudit(path).ok, true);

    const w2 = AuditWriter.create(freshPath(), 'r-red', { redact: () => '{not json' });
    assert.throws(() => w2.append('secret.use', { v: 1 }), /invalid JSON/);
    assert.equal(w2.seq, 0);
    w2.close();
  });
});

describe('AuditWriter.resume', () => {
  it('continues seq and prev, and the chain still verifies', () => {
    const { path } = writeLog(3);
    const before = verifyAudit(path);
    assert.ok(before.ok);
    const w = AuditWriter.resume(path, 'r-test');
    assert.equal(w.seq, 3);
    assert.equal(w.lastHash, before.lastHash);
    const e = w.append('run.end', { status: 'interrupted' });
    w.close();
    assert.equal(e.seq, 4);
    assert.equal(e.prev, before.lastHash);
    assert.deepEqual(verifyAudit(path), { ok: true, count: 4, lastHash: e.hash });
  });

  it('resumes an empty file from the genesis prev', () => {
    const path = freshPath();
    AuditWriter.create(path, 'r-e').close();
    const w = AuditWriter.resume(path, 'r-e');
    assert.equal(w.append('run.end', {}).prev, GENESIS_PREV);
    w.close();
    assert.equal(verifyAudit(path).ok, true);
  });

  it('truncates a torn partial line first', () => {
    const { path } = writeLog(3);
    appendFileSync(path, '{"seq":4,"ts":"2026-');
    assert.equal(verifyAudit(path).ok, false);
    const w = AuditWriter.resume(path, 'r-test');
    assert.equal(w.seq, 3);
    w.append('run.end', { status: 'killed' });
    w.close();
    const r = verifyAudit(path);
    assert.equal(r.ok && r.count, 4);
  });

  it('keeps a last event that lost only its newline', () => {
    const { path } = writeLog(3);
    const full = readFileSync(path);
    writeFileSync(path, full.subarray(0, full.length - 1));
    const w = AuditWriter.resume(path, 'r-test');
    assert.equal(w.seq, 3);
    w.append('run.end', {});
    w.close();
    const r = verifyAudit(path);
    assert.equal(r.ok && r.count, 4);
  });

  it('refuses another run id or a tampered last line', () => {
    const { path, lines } = writeLog(3);
    assert.throws(() => AuditWriter.resume(path, 'r-other'), /run id mismatch/);
    lines[2] = lines[2].replace('hello 3', 'hellp 3');
    writeFileSync(path, lines.join('\n') + '\n');
    assert.throws(() => AuditWriter.resume(path, 'r-test'), /hash mismatch/);
  });

  it('finds the last line across tail-read chunk boundaries', () => {
    const path = freshPath();
    const w = AuditWriter.create(path, 'r-big');
    const big = 'x'.repeat(100_000);
    w.append('tool.result', { out: big });
    w.append('tool.result', { out: big });
    w.close();
    appendFileSync(path, `{"partial":"${'y'.repeat(70_000)}`);
    const w2 = AuditWriter.resume(path, 'r-big');
    assert.equal(w2.seq, 2);
    w2.append('run.end', {});
    w2.close();
    const r = verifyAudit(path);
    assert.equal(r.ok && r.count, 3);
  });
});

describe('many appends', () => {
  // Speed is measured by `npm run bench` (audit_append_per_s), not asserted here.
  it('keeps a 50k-event chain intact across the background sync timer', () => {
    const path = freshPath();
    const w = AuditWriter.create(path, 'r-bench');
    for (let i = 0; i < 50_000; i++) w.append('tool.call', { i, tool: 'bash', args: { cmd: 'ls -la /workspace' } });
    w.close();
    const r = verifyAudit(path);
    assert.equal(r.ok && r.count, 50_000);
  });
});
