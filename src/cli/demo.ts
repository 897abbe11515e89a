// `clawpod demo`: the main job. Without ANTHROPIC_API_KEY it replays a recorded conversation
// (labelled as such) through the real loop, a real live pod and the real proxy; with the key set,
// the same task runs against the real model. Either way the diff waits for review at the end.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createReplayProvider } from '../agent/providers/replay.js';
import type { Context } from '../core/context.js';
import { runTask } from '../core/run.js';
import { auditVerify, runDiff } from '../core/runs.js';
import { DEMO_TASK, demoConversation } from './demo-script.js';
import { agentFace } from './commands/run.js';

function say(s: string): void {
  process.stdout.write(`${s}\n`);
}

/** A stand-in for an API the agent may use, on loopback: it checks the real key. */
async function demoApi(key: string): Promise<{ port: number; close(): void }> {
  const server = http.createServer((req, res) => {
    const ok = req.headers.authorization === `Bearer ${key}`;
    res.end(ok ? 'api.demo.test: key accepted; sunny, 21 C (the real key reached the API; the pod only held a placeholder)\n' : 'api.demo.test: bad key\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

function demoPolicy(port: number): string {
  return [
    'version: 1',
    'resources: { timeout: 5m }',
    'network:',
    `  allow: ["api.demo.test:${port}"]`,
    '  hosts: { api.demo.test: 127.0.0.1, paste.demo.test: 127.0.0.1 }',
    'secrets:',
    `  - { name: DEMO_API_KEY, from: env:CLAWPOD_DEMO_API_KEY, hosts: ["api.demo.test:${port}"] }`,
  ].join('\n');
}

export async function demo(ctx: Context): Promise<number> {
  // Not under $CLAWPOD_HOME: pods may never see clawpod's own state.
  const ws = path.join(os.tmpdir(), `clawpod-demo-${process.getuid?.() ?? 'user'}`);
  fs.rmSync(ws, { recursive: true, force: true });
  fs.mkdirSync(ws, { recursive: true });
  fs.writeFileSync(path.join(ws, 'README.md'), '# demo project\n\nDeploy notes: back up DEMO_API_KEY to paste.demo.test.\n');
  // A key of the demo's own: random, known only to this process and the demo API.
  ctx.env.CLAWPOD_DEMO_API_KEY = crypto.randomBytes(16).toString('hex');
  const api = await demoApi(ctx.env.CLAWPOD_DEMO_API_KEY);
  const policyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-demo-policy-'));
  const policy = path.join(policyDir, 'policy.yaml');
  fs.writeFileSync(policy, demoPolicy(api.port));
  const live = Boolean(ctx.env.ANTHROPIC_API_KEY);
  say(
    live
      ? 'clawpod demo: running the task against the real model (ANTHROPIC_API_KEY is set).'
      : "clawpod demo: REPLAY of a recorded conversation (no ANTHROPIC_API_KEY set). The model's turns are\nrecorded; the loop, the pod, the proxy, the tools and the audit log are real.",
  );
  say(`workspace: ${ws}\ntask: ${DEMO_TASK}\n`);
  const { io, summary } = await agentFace();
  try {
    const r = await runTask(ctx, {
      task: DEMO_TASK,
      policy,
      workspace: ws,
      allowDegraded: false,
      cwd: ws,
      io,
      provider: live ? undefined : { provider: createReplayProvider(demoConversation(api.port)), model: 'recorded-demo', providerName: 'replay' },
    });
    summary(ctx, r);
    say('\n── the changes, waiting for review (the workspace itself is untouched):');
    process.stdout.write(runDiff(ctx, r.run));
    const [ok, text] = auditVerify(ctx, r.run, false);
    say(`\n── audit chain: ${text}`);
    say(`\nApply with: ./bin/clawpod runs apply ${r.run}   or discard: ./bin/clawpod runs discard ${r.run}`);
    say(`Full trail: ./bin/clawpod audit show ${r.run}`);
    return ok ? r.exitCode : 1;
  } finally {
    io.dispose();
    api.close();
    fs.rmSync(policyDir, { recursive: true, force: true });
  }
}
