// The audit log's size cap and its readers' memory bound.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { AuditWriter, auditEvents, readAudit, verifyAudit } from './chain.js';

const dir = mkdtempSync(join(tmpdir(), 'clawpod-audit-cap-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `a${++n}.jsonl`);

describe('audit byte cap', () => {
  it('ends in one limit.hit {cap: audit}, calls onLimit once, then keeps only how the run ended', () => {
    const path = fresh();
    const limits: unknown[] = [];
    const w = AuditWriter.create(path, 'r-cap', { maxBytes: 100_000, onLimit: (l) => limits.push(l) });
    let written = 0;
    for (let i = 0; i < 5000; i++) if (w.append('net.deny', { host: `h${i}.test`, reason: 'not in network.allow' })) written++;
    assert.ok(written > 100 && written < 5000, `${written} written`);
    assert.deepEqual(limits, [{ cap: 'audit', limit: 100_000 }]);
    assert.equal(w.limitReached, true);
    assert.equal(w.dropped, 5000 - written);
    assert.equal(w.append('tool.call', { x: 1 }), null);
    assert.ok(w.append('exec.exit', { exitCode: 137 }));
    assert.ok(w.append('run.end', { status: 'killed' }));
    w.close();
    assert.ok(statSync(path).size <= 100_000 + 1024, `file is ${statSync(path).size} bytes`);
    const events = readAudit(path);
    assert.deepEqual(
      events.filter((e) => e.type === 'limit.hit').map((e) => e.data),
      [{ cap: 'audit', limit: 100_000 }],
    );
    assert.deepEqual(
      events.slice(-3).map((e) => e.type),
      ['limit.hit', 'exec.exit', 'run.end'],
    );
    assert.equal(verifyAudit(path).ok, true);
  });

  it('a resumed chain counts the bytes already there', () => {
    const path = fresh();
    const w = AuditWriter.create(path, 'r-res', { maxBytes: 70_000 });
    for (let i = 0; i < 150; i++) w.append('tool.call', { i, pad: 'x'.repeat(300) });
    w.close();
    const r = AuditWriter.resume(path, 'r-res', { maxBytes: 70_000 });
    let more = 0;
    while (r.append('tool.call', { pad: 'y'.repeat(300) }) && more < 1000) more++;
    assert.ok(more < 100, `${more} more after resume`);
    r.close();
    assert.ok(statSync(path).size <= 70_000 + 1024);
  });

  it('a throwing onLimit does not stop the limit from being recorded', () => {
    const path = fresh();
    const w = AuditWriter.create(path, 'r-thr', {
      maxBytes: 65_536,
      onLimit: () => {
        throw new Error('boom');
      },
    });
    for (let i = 0; i < 1000; i++) w.append('tool.call', { pad: 'z'.repeat(200) });
    w.close();
    assert.equal(readAudit(path).filter((e) => e.type === 'limit.hit').length, 1);
  });
});

describe('reading large logs', () => {
  it('verify and the event reader stream: lines across chunk borders, a torn tail, no trailing newline', () => {
    const path = fresh();
    const w = AuditWriter.create(path, 'r-big');
    // Lines of about 700 KiB: every 1 MiB read chunk ends inside one.
    for (let i = 0; i < 5; i++) w.append('tool.result', { i, out: `é${'x'.repeat(700 * 1024)}` });
    w.close();
    assert.deepEqual(verifyAudit(path).ok, true);
    assert.deepEqual(
      [...auditEvents(path)].map((e) => e.data.i),
      [0, 1, 2, 3, 4],
    );
    writeFileSync(path, '{"seq":6', { flag: 'a' });
    assert.deepEqual(verifyAudit(path), { ok: false, line: 6, reason: 'truncated final line (no newline)' });
    assert.equal([...auditEvents(path)].length, 5, 'the torn tail is skipped for display');
  });

  it('a log larger than a JavaScript string can hold verifies in bounded memory', { timeout: 300_000 }, () => {
    // 600 lines of 1 MiB: past V8's ~512 MiB string limit, where reading the file whole fails.
    const path = fresh();
    const w = AuditWriter.create(path, 'r-huge', { maxBytes: 2 ** 40 });
    const pad = 'q'.repeat(1024 * 1024);
    for (let i = 0; i < 600; i++) w.append('tool.result', { i, out: pad });
    w.close();
    const chain = fileURLToPath(new URL('./chain.js', import.meta.url));
    const script = `import { verifyAudit, auditEvents } from ${JSON.stringify(chain)};
      const r = verifyAudit(${JSON.stringify(path)});
      let k = 0; for (const e of auditEvents(${JSON.stringify(path)})) k++;
      console.log(JSON.stringify({ ok: r.ok, count: r.count, k, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));`;
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    rmSync(path, { force: true });
    assert.equal(out.status, 0, out.stderr);
    const res = JSON.parse(out.stdout) as { ok: boolean; count: number; k: number; maxRssMiB: number };
    assert.deepEqual([res.ok, res.count, res.k], [true, 600, 600]);
    assert.ok(res.maxRssMiB < 200, `peak RSS ${res.maxRssMiB} MiB for a ${600} MiB log`);
  });
});
