// Runs as docker users manage containers (issue 9, item 11), output people read and scripts
// parse (item 12), and what a user can cause is one line, never "internal error": all through
// the real binary.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { AuditWriter } from '../src/audit/chain.js';
import { openStore, type NewRun } from '../src/store/runs.js';
import { cli, tmpDir, workspace } from './helpers.js';

let home: string;
before(() => {
  home = tmpDir('home');
});

const NO_INTERNAL = (r: { stderr: string; stdout: string }) => {
  assert.doesNotMatch(r.stderr + r.stdout, /internal error|^\s+at .*\(|node:internal/m);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
};

async function podRun(h: string, ws: string, script: string): Promise<string> {
  const r = await cli(['exec', '--', 'sh', '-c', script], { home: h, cwd: ws, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.runId, r.stderr);
  return r.runId;
}

/** A run record written straight into a home's store (and its dir), for states a test cannot wait for. */
function fakeRun(h: string, rec: Partial<NewRun> & { id: string }, audit: [string, object][] = []): string {
  const dir = path.join(h, 'runs', rec.id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const auditPath = path.join(dir, 'audit.jsonl');
  const w = AuditWriter.create(auditPath, rec.id, { syncEveryMs: 0 });
  for (const [type, data] of audit) w.append(type, data);
  w.close();
  const s = openStore(path.join(h, 'clawpod.db'));
  try {
    s.createRun({
      kind: 'exec',
      command: ['true'],
      workspace: '',
      workspaceMode: 'overlay',
      policySource: 'builtin:strict',
      backend: 'bwrap',
      status: 'done',
      endedAt: new Date().toISOString(),
      exitCode: 0,
      auditPath,
      runDir: dir,
      ...rec,
    });
  } finally {
    s.close();
  }
  return dir;
}

test('runs list shows kind and duration, "N more" when cut; bad --limit values are one line', async () => {
  const h = tmpDir('home');
  const ws = workspace({ 'a.txt': 'a\n' });
  await podRun(h, ws, 'true');
  await podRun(h, ws, 'echo b > b.txt');
  const all = await cli(['runs', 'list'], { home: h });
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /^RUN +STATUS +EXIT +KIND +TIME +FILES +DIFF +STARTED +COMMAND$/m);
  assert.match(all.stdout, /^r-\S+ +done +0 +exec +\d+(ms|\.\ds) +1 +pending /m);
  const cut = await cli(['runs', 'list', '--limit', '1'], { home: h });
  assert.match(cut.stdout, /^\.\.\. 1 more \(clawpod runs list --limit 2 shows them all\)$/m);
  assert.equal(cut.stdout.trim().split('\n').length, 3);
  for (const bad of ['x', '0', '-1', '1.5', '99999999999999999999']) {
    const r = await cli(['runs', 'list', `--limit=${bad}`], { home: h });
    assert.equal(r.code, 125, bad);
    NO_INTERNAL(r);
    assert.match(r.stderr, /^clawpod: --limit must be a whole number from 1 to/);
    const apart = await cli(['runs', 'list', '--limit', bad], { home: h });
    assert.equal(apart.code, 125, bad);
    NO_INTERNAL(apart);
  }
  const json = await cli(['runs', 'list', '--limit', '1', '--json'], { home: h });
  const doc = JSON.parse(json.stdout);
  assert.equal(doc.more, 1);
  assert.equal(doc.runs.length, 1);
  assert.equal(doc.runs[0].kind, 'exec');
  assert.equal(typeof doc.runs[0].durationMs, 'number');
  assert.equal(doc.runs[0].diffState, 'pending');
});

test('ids: last, any unique part, an ambiguous part names the candidates, a short one says so', async () => {
  const h = tmpDir('home');
  fakeRun(h, { id: 'r-20261101-100000-abc123', startedAt: '2026-11-01T10:00:00.000Z' });
  fakeRun(h, { id: 'r-20261102-100000-ffabc1', startedAt: '2026-11-02T10:00:00.000Z' });
  fakeRun(h, { id: 'r-20261103-100000-000777', startedAt: '2026-11-03T10:00:00.000Z' });
  const last = await cli(['runs', 'show', 'last'], { home: h });
  assert.match(last.stdout, /^run: +r-20261103-100000-000777 \(exec\)/m);
  const part = await cli(['runs', 'show', '0777'], { home: h });
  assert.match(part.stdout, /^run: +r-20261103-100000-000777/m);
  const amb = await cli(['runs', 'show', 'abc1'], { home: h });
  assert.equal(amb.code, 125);
  NO_INTERNAL(amb);
  assert.match(amb.stderr, /"abc1" is ambiguous: it matches 2 runs \(r-20261101-100000-abc123, r-20261102-100000-ffabc1\); give more characters/);
  const short = await cli(['runs', 'show', 'ab'], { home: h });
  assert.match(short.stderr, /give at least 4 characters/);
  const none = await cli(['runs', 'show', 'zzzz'], { home: h });
  assert.match(none.stderr, /no run "zzzz": no run id is or contains it/);
  const empty = await cli(['runs', 'show', 'last'], { home: tmpDir('home') });
  assert.match(empty.stderr, /no runs yet/);
});

test('runs rm: refuses running and pending runs (nothing removed), removes the rest with their dirs', async () => {
  const h = tmpDir('home');
  const ws = workspace({ 'a.txt': 'a\n' });
  const plain = await podRun(h, ws, 'true');
  const pending = await podRun(h, ws, 'echo x > x.txt');
  // Alive: this test's own process supervises it, so no clawpod reaps it.
  const runningDir = fakeRun(h, { id: 'r-20261201-000000-c0ffee', status: 'running', endedAt: null, exitCode: null, pid: process.pid });
  const refused = await cli(['runs', 'rm', plain, 'c0ffee'], { home: h });
  assert.equal(refused.code, 125);
  NO_INTERNAL(refused);
  assert.match(refused.stderr, /still running.*nothing was removed/);
  assert.ok(fs.existsSync(path.join(h, 'runs', plain)), 'nothing removed when one id is refused');
  assert.ok(fs.existsSync(runningDir));
  const waiting = await cli(['runs', 'rm', pending], { home: h });
  assert.equal(waiting.code, 125);
  assert.match(waiting.stderr, /1 change\(s\) waiting for review.*runs rm --force/);
  const ok = await cli(['runs', 'rm', plain, '--force', pending], { home: h });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`removed run ${plain}\\nremoved run ${pending}`));
  assert.ok(!fs.existsSync(path.join(h, 'runs', plain)) && !fs.existsSync(path.join(h, 'runs', pending)));
  const list = await cli(['runs', 'list'], { home: h });
  assert.doesNotMatch(list.stdout, new RegExp(`${plain}|${pending}`));
  assert.match(list.stdout, /c0ffee/);
  // The removal is on the decision log.
  const log = fs
    .readFileSync(path.join(h, 'decisions.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    log.map((e) => e.type),
    ['runs.remove'],
  );
  assert.deepEqual(
    log[0].data.runs.map((r: { id: string }) => r.id),
    [plain, pending],
  );
});

test('runs prune --older-than removes old finished runs, keeps pending ones and says so; --dry-run removes nothing', async () => {
  const h = tmpDir('home');
  fakeRun(h, { id: 'r-20200101-000000-000001', startedAt: '2020-01-01T00:00:00.000Z' });
  fakeRun(h, { id: 'r-20200101-000000-000002', startedAt: '2020-01-01T00:00:01.000Z', diffState: 'pending', filesChanged: 2 });
  fakeRun(h, { id: 'r-29990101-000000-000003', startedAt: new Date().toISOString() });
  const dry = await cli(['runs', 'prune', '--older-than', '7d', '--dry-run'], { home: h });
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /would remove run r-20200101-000000-000001\nwould remove 1 run\(s\)/);
  assert.ok(fs.existsSync(path.join(h, 'runs', 'r-20200101-000000-000001')));
  const r = await cli(['runs', 'prune', '--older-than', '7d'], { home: h });
  assert.match(r.stdout, /removed 1 run\(s\) started before/);
  assert.match(r.stdout, /kept 1 run\(s\) with changes waiting for review/);
  const list = await cli(['runs', 'list'], { home: h });
  assert.doesNotMatch(list.stdout, /000001/);
  assert.match(list.stdout, /000002/);
  assert.match(list.stdout, /000003/);
  const bad = await cli(['runs', 'prune', '--older-than', 'soon'], { home: h });
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /--older-than takes a duration such as 30m, 12h, 7d or 2w/);
});

test('runs logs: stdout to stdout, stderr to stderr, --json; a run that kept nothing says so', async () => {
  const h = tmpDir('home');
  const ws = workspace();
  const id = await podRun(h, ws, 'echo to-out; echo to-err >&2');
  const logs = await cli(['runs', 'logs', id], { home: h });
  assert.equal(logs.code, 0, logs.stderr);
  assert.equal(logs.stdout, 'to-out\n');
  assert.equal(logs.stderr, 'to-err\n');
  const err = await cli(['runs', 'logs', id, '--stderr'], { home: h });
  assert.equal(err.stdout, '');
  const json = JSON.parse((await cli(['runs', 'logs', id, '--json'], { home: h })).stdout);
  assert.equal(json.stdout, 'to-out\n');
  assert.equal(json.transcript, null);
  for (const f of ['stdout.log', 'stderr.log']) fs.rmSync(path.join(h, 'runs', id, f));
  const old = await cli(['runs', 'logs', id], { home: h });
  assert.equal(old.code, 0);
  assert.match(old.stderr, /kept no output \(runs from before clawpod kept output have none\)/);
  const asked = await cli(['runs', 'logs', id, '--transcript'], { home: h });
  assert.equal(asked.code, 125);
  assert.match(asked.stderr, /kept no transcript \(only agent runs/);
});

const AGENT_AUDIT: [string, object][] = [
  ['run.start', { kind: 'run', task: 'fix it', model: 'anthropic:claude-test' }],
  ['run.end', { status: 'done', reason: 'done', exitCode: 0, turns: 3, usage: { inputTokens: 100, outputTokens: 50 }, toolCalls: 2, filesChanged: 0 }],
];

test('runs show of an agent run: model, turns, tokens, tool calls, stop reason, final message; logs render the transcript inertly', async () => {
  const h = tmpDir('home');
  const dir = fakeRun(h, { id: 'r-20261201-000000-a9e471', kind: 'run', command: ['fix it'] }, AGENT_AUDIT);
  fs.writeFileSync(path.join(dir, 'answer.txt'), 'All fixed.\nTests pass.\n');
  fs.writeFileSync(
    path.join(dir, 'transcript.jsonl'),
    [
      { type: 'text', text: 'Looking \u202e at it' },
      { type: 'tool.call', name: 'bash', input: { command: 'npm test' } },
      { type: 'tool.result', name: 'bash', isError: true, content: '1 failing\n' },
      { type: 'text', text: 'All fixed.' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n') + '\nnot json\n',
  );
  const show = await cli(['runs', 'show', 'a9e471'], { home: h });
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /^model: +anthropic:claude-test$/m);
  assert.match(show.stdout, /^agent: +3 turn\(s\), 150 tokens \(100 in, 50 out\), 2 tool call\(s\), stop reason: done$/m);
  assert.match(show.stdout, /^answer: +All fixed\.\n +Tests pass\.$/m);
  assert.match(show.stdout, /^task: +"fix it"$/m);
  const json = JSON.parse((await cli(['runs', 'show', 'a9e471', '--json'], { home: h })).stdout);
  assert.deepEqual(json.agent, {
    model: 'anthropic:claude-test',
    turns: 3,
    usage: { inputTokens: 100, outputTokens: 50 },
    toolCalls: 2,
    stopReason: 'done',
    answer: 'All fixed.\nTests pass.\n',
  });
  assert.equal(json.id, 'r-20261201-000000-a9e471');
  assert.deepEqual(json.logs, { stdout: false, stderr: false, transcript: true, answer: true });
  const logs = await cli(['runs', 'logs', 'a9e471'], { home: h });
  assert.equal(
    logs.stdout,
    '│ Looking \\u{202e} at it\n▸ bash {"command":"npm test"}\n  ✗ bash\n    ┊ 1 failing\n│ All fixed.\n[transcript line 5 is not a record clawpod wrote]\n',
  );
  const answer = await cli(['runs', 'logs', 'last', '--answer'], { home: h });
  assert.equal(answer.stdout, 'All fixed.\nTests pass.\n');
  // --json: the model's bidi override stays in the text, written as an escape.
  const lj = await cli(['runs', 'logs', 'last', '--json'], { home: h });
  assert.ok(lj.stdout.includes('Looking \\u202e at it'), lj.stdout);
  assert.ok(!lj.stdout.includes('\u202e'));
  assert.equal(JSON.parse(lj.stdout).transcript[0].text, 'Looking \u202e at it');
});

test('runs show tells a Ctrl-C (exit 130) from a clawpod that died', async () => {
  const h = tmpDir('home');
  fakeRun(h, { id: 'r-20261201-000000-000130', status: 'interrupted', exitCode: 130 });
  fakeRun(h, { id: 'r-20261201-000001-0000d1', status: 'interrupted', exitCode: null }, [
    ['run.end', { status: 'interrupted', exitCode: null, reason: 'clawpod exited before the run finished' }],
  ]);
  assert.match((await cli(['runs', 'show', '000130'], { home: h })).stdout, /^ended by: +interrupted by the user \(Ctrl-C\), exit 130$/m);
  assert.match((await cli(['runs', 'show', '0000d1'], { home: h })).stdout, /^ended by: +clawpod exited before the run finished$/m);
  const json = JSON.parse((await cli(['runs', 'show', '0000d1', '--json'], { home: h })).stdout);
  assert.equal(json.endReason, 'clawpod exited before the run finished');
  assert.equal(json.exitCode, null);
});

test('options: did-you-mean, an option of another subcommand named with its owners, --help from the table', async () => {
  const typo = await cli(['runs', 'diff', 'last', '--stats'], { home });
  assert.equal(typo.code, 125);
  NO_INTERNAL(typo);
  assert.match(typo.stderr, /unknown option "--stats" \(did you mean --stat\?/);
  const foreign = await cli(['runs', 'list', '--force'], { home });
  assert.match(foreign.stderr, /--force goes with runs apply or runs rm or runs prune, not runs list/);
  const help = await cli(['runs', 'prune', '--help'], { home });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--older-than DURATION/);
  const noId = await cli(['runs', 'logs'], { home });
  assert.match(noId.stderr, /runs logs needs a run id/);
});

test('audit show --json is the chain as NDJSON; audit verify --json is {ok, events, head, decisions}', async () => {
  const h = tmpDir('home');
  const id = await podRun(h, workspace(), 'echo hi');
  const show = await cli(['audit', 'show', id, '--json'], { home: h });
  const events = show.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(events[0].type, 'run.start');
  assert.equal(events[0].seq, 1);
  assert.match(events[0].hash, /^[0-9a-f]{64}$/);
  const v = await cli(['audit', 'verify', id, '--json'], { home: h });
  assert.equal(v.code, 0, v.stderr);
  const doc = JSON.parse(v.stdout);
  assert.equal(doc.ok, true);
  assert.equal(doc.events, events.length);
  assert.equal(doc.head, events.at(-1).hash);
  assert.deepEqual(doc.decisions, { ok: true, events: 0, head: '' });
  const all = JSON.parse((await cli(['audit', 'verify', '--all', '--json'], { home: h })).stdout);
  assert.equal(all.runs[0].id, id);
});
