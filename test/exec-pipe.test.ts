// `clawpod exec ... | head`: the reader going away reaches the pod as EPIPE, as it would without
// clawpod (the pod's output is relayed through clawpod to be kept with the run). Before, the pod
// blocked on a full pipe until its wall-clock cap and the run ended as a timeout.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { BIN, tmpDir, workspace } from './helpers.js';

test("a reader that goes away ends the pod's output, not the run's clock", async () => {
  const home = tmpDir('exec-pipe');
  const started = Date.now();
  const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const sh = spawn('sh', ['-c', `"${process.execPath}" "${BIN}" exec -T --timeout 30s -- sh -c 'seq 1 50000000' | head -n 2`], {
      cwd: workspace(),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/root', CLAWPOD_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    sh.stdout.on('data', (d) => {
      out += d;
    });
    sh.stderr.on('data', (d) => {
      err += d;
    });
    sh.on('close', (code) => resolve({ code, out, err }));
  });
  assert.equal(r.out, '1\n2\n');
  assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms: ${r.err}`);
  assert.doesNotMatch(r.err, /timeout limit hit/);
});
