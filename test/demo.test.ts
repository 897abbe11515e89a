// The README's main job, end to end: the offline demo replays a recorded conversation through
// the real loop, a real live pod and the real proxy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auditEvents, cli, tmpDir } from './helpers.js';

test('clawpod demo (no API key): a labelled replay that builds, tests, is blocked twice, and leaves a diff', async () => {
  const home = tmpDir('home');
  const r = await cli(['demo'], { home, timeoutMs: 120_000, env: { ANTHROPIC_API_KEY: undefined } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /REPLAY of a recorded conversation/);
  // Off a terminal the agent's trace (tool calls and their output) is on stderr.
  assert.match(r.stderr, /test: ok/);
  assert.match(r.stderr, /cannot access '\/root\/\.ssh'/, "the host's SSH keys are not there to read");
  assert.match(r.stderr, /key accepted/, 'the scoped secret worked without the pod seeing it');
  assert.match(r.stderr, /HTTP 403: not in network\.allow/, 'the leak was refused');
  assert.match(r.stdout, /\+\+\+ b\/fizz\.sh/);
  assert.match(r.stdout, /audit chain: r-[\w-]+: ok/);
  const events = auditEvents(home, r.runId!);
  assert.ok(events.some((e) => e.type === 'secret.use'));
  assert.ok(events.some((e) => e.type === 'net.deny' && e.data.host === 'paste.demo.test'));
  assert.equal(events.filter((e) => e.type === 'tool.call').length, 6);
});
