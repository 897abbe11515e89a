// The dashboard in a real browser: Debian's chromium driven by playwright-core, against the real
// `clawpod serve` (real pods, real store) on a private home. The page is opened from the link the
// server prints, commands are started from the page's own form, and every step is checked in the
// page's DOM and photographed (CLAWPOD_SHOTS, default /tmp/dashboard/*.png). Hostile pod output
// and file names must show as text and run nothing; the page must work under the server's CSP.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { startFakeAnthropic } from './fakes/anthropic.js';
import { BIN, eventually, tmpDir } from './helpers.js';

const CHROMIUM = process.env.CLAWPOD_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.CLAWPOD_SHOTS ?? path.join(os.tmpdir(), 'dashboard');
const WAIT = { timeout: 30_000 };
const HOSTILE_NAME = '<img src=x onerror=window.__pwned=1>';
const HOSTILE_TEXT = '</script><script>window.__pwned=2</script><b>bold</b>';

let server: ChildProcess;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let link = '';
let base = '';
let ws = '';
let closeModel: (() => Promise<void>) | null = null;
let svc: http.Server | null = null;
/** The run of the diff/apply test, opened again after its end. */
let appliedRun = '';
const problems: string[] = [];

async function shot(name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Starts a shell line from the page's Start form and waits for its run page. */
async function startFromPage(line: string): Promise<string> {
  await page.click('nav a[href="#/new"]');
  await page.fill('input[name=command]', line);
  await page.click('form button[type=submit]');
  await page.waitForURL(/#\/runs\/r-/, WAIT);
  return decodeURIComponent(new URL(page.url()).hash.split('/')[2]);
}

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run sh scripts/setup.sh (it installs Debian's chromium)`);
  const home = tmpDir('dash-home');
  ws = tmpDir('dash-ws');
  // A service on loopback the task's policy allows (as svc.test), beside a name it does not.
  svc = http.createServer((_req, res) => res.end('svc-says-hi'));
  await new Promise<void>((r) => svc?.listen(0, '127.0.0.1', r));
  const port = (svc.address() as AddressInfo).port;
  fs.mkdirSync(path.join(home, 'policies'), { recursive: true });
  fs.writeFileSync(
    path.join(home, 'policies', 'dash.yaml'),
    ['version: 1', 'network:', `  allow: ["svc.test:${port}"]`, '  hosts: { svc.test: 127.0.0.1 }', 'resources:', '  memory: 64Mi', ''].join('\n'),
  );
  // The model the task test talks to: a faithful local Anthropic server with a scripted conversation.
  const model = await startFakeAnthropic([
    {
      text: 'Looking around the workspace first.',
      toolUses: [
        {
          name: 'bash',
          input: { command: `echo from-the-tool; curl -s http://svc.test:${port}/; echo; curl -s -m 5 -o /dev/null http://denied.test/; echo curl-done` },
        },
      ],
      usage: { input_tokens: 1000, output_tokens: 200 },
    },
    {
      toolUses: [{ name: 'bash', input: { command: 'head -c 300000000 /dev/zero | tail -c 250000000 >/dev/null; echo survived' } }],
      usage: { input_tokens: 1500, output_tokens: 100 },
    },
    { toolUses: [{ name: 'write_file', input: { path: 'notes.txt', content: 'from the agent\n' } }], usage: { input_tokens: 2000, output_tokens: 40 } },
    { text: 'All done: notes.txt is written.', stopReason: 'end_turn', usage: { input_tokens: 2100, output_tokens: 10 } },
  ]);
  closeModel = () => model.close();
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    CLAWPOD_HOME: home,
    ANTHROPIC_API_KEY: 'sk-ant-test-dashboard',
    ANTHROPIC_BASE_URL: model.url,
  };
  server = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--warm', '0', '--workspaces', ws], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr?.on('data', (d) => {
    stderr += d;
  });
  const printed = await eventually(() => /clawpod: dashboard (\S+#token=\S+)/.test(stderr) || server.exitCode !== null, 60_000);
  const m = /clawpod: dashboard (\S+#token=\S+)/.exec(stderr);
  assert.ok(printed && m, `clawpod serve printed its dashboard link:\n${stderr}`);
  link = m[1];
  base = new URL(link).origin;
  browser = await chromium.launch({ executablePath: CHROMIUM });
  context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  // A CSP refusal is a page bug: the page must need nothing the policy forbids.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      const w = window as unknown as { __csp?: string[] };
      (w.__csp ??= []).push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  page = await context.newPage();
  page.on('console', (msg) => {
    // An API answer of 4xx is logged by the browser as a failed load: the page shows those itself.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss();
  });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  await closeModel?.();
  svc?.close();
});

test('dashboard: the page is served under a strict CSP and asks for a token without one', async () => {
  const res = await page.goto(`${base}/`);
  const csp = res?.headers()['content-security-policy'] ?? '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  await page.waitForSelector('form.token-form', WAIT);
  await shot('00-sign-in');
  // A wrong token is refused by the server (401) and the page asks again, saying so.
  await page.fill('input[name=token]', 'not-the-token');
  await page.click('form.token-form button[type=submit]');
  await page.waitForSelector('form.token-form .error', WAIT);
  assert.match((await page.textContent('form.token-form .error')) ?? '', /refused the token/);
});

test('dashboard: the token comes from the link, leaves the address bar, and the runs list loads', async () => {
  await page.goto(link);
  await page.waitForSelector('table.runs', WAIT);
  assert.doesNotMatch(page.url(), /token/, 'the token is gone from the address bar');
  const kept = await page.evaluate(() => sessionStorage.getItem('clawpod.token'));
  assert.equal(kept, new URL(link).hash.replace('#token=', ''));
  await page.waitForSelector('.conn.ok', WAIT);
  // A reload would clear this: the views below must update without one.
  await page.evaluate(() => {
    (window as unknown as { __same: number }).__same = 42;
  });
});

test('dashboard: a long command streams live output, then is cancelled from the page', async () => {
  // It prints a line every 0.2 s (for at most 60 s): whenever the page connects, lines come after.
  await startFromPage('i=0; while [ $i -lt 300 ]; do echo tick-$i; i=$((i+1)); sleep 0.2; done; echo never');
  // Output on the page while the run still runs: it came over the event stream, live.
  await page.waitForSelector('.log pre.console:has-text("tick-")', WAIT);
  // The status comes on its own event, which can be drawn just after the first output.
  await page.waitForSelector('.toolbar .badge.status-running', WAIT);
  assert.equal(await page.textContent('.toolbar .badge'), 'running');
  await shot('01-live-running');
  await page.click('.toolbar button.danger');
  await page.waitForSelector('.ev-end-bad', WAIT);
  await page.waitForSelector('.toolbar .badge.status-cancelled', WAIT);
  await shot('01b-cancelled');
  const output = await page.$$eval('.log pre.console', (pres) => pres.map((p) => p.textContent).join(''));
  assert.match(output, /^(tick-\d+\n)+$/, 'the command was stopped before its last echo');
});

test('dashboard: a command started from the page, its live view, diff, apply and verified audit', async () => {
  const id = await startFromPage('echo hello; echo x > f.txt; echo to-stderr >&2');
  appliedRun = id;
  await page.waitForSelector('.ev-end-ok', WAIT);
  const log = (await page.textContent('.log')) ?? '';
  for (const want of ['hello', 'to-stderr', 'f.txt', 'done, exit 0']) assert.ok(log.includes(want), `the live view shows ${want}:\n${log}`);
  await page.waitForSelector('.toolbar .badge.status-done', WAIT);
  await shot('02-live-done');

  await page.click('button[data-tab=diff]');
  await page.waitForSelector('pre.diff .d-add', WAIT);
  assert.equal(await page.textContent('pre.diff .d-add'), '+x\n');
  await shot('03-diff');
  assert.ok(!fs.existsSync(path.join(ws, 'f.txt')), 'nothing is in the workspace before apply');
  await page.click('button[data-action=apply]');
  await page.waitForSelector('.diff-state.diff-applied', WAIT);
  assert.equal(fs.readFileSync(path.join(ws, 'f.txt'), 'utf8'), 'x\n', 'apply from the page wrote the file');

  await page.click('button[data-tab=audit]');
  await page.waitForSelector('.verify.ok', WAIT);
  assert.match((await page.textContent('.verify.ok')) ?? '', /verified: 5 events/);
  // The badge and the rows come from two requests: the rows are there once run.end is.
  await page.waitForSelector('table.audit tbody tr:has-text("run.end")', WAIT);
  const types = await page.$$eval('table.audit tbody tr td:nth-child(3)', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(types, ['run.start', 'exec.start', 'exec.exit', 'file.write', 'run.end']);
  await shot('04-audit');

  await page.click('button[data-tab=policy]');
  await page.waitForSelector('.policy-lines li', WAIT);
  assert.match((await page.textContent('.policy-lines')) ?? '', /Network\s*none/);
  await shot('05-run-policy');

  await page.click('nav a[href="#/runs"]');
  await page.waitForSelector(`tr[data-run="${id}"] .status-done`, WAIT);
  assert.match((await page.textContent(`tr[data-run="${id}"]`)) ?? '', /1 file · applied/);
  assert.equal(await page.evaluate(() => (window as unknown as { __same?: number }).__same), 42, 'no reload happened');
  await shot('06-runs');
});

test('dashboard: hostile output, file names and diffs are shown as text and run nothing', async () => {
  const line = `printf '%s\\n' '${HOSTILE_NAME}' '${HOSTILE_TEXT}'; printf '%s\\n' '${HOSTILE_TEXT}' > '${HOSTILE_NAME}.txt'`;
  await startFromPage(line);
  await page.waitForSelector('.ev-end-ok', WAIT);
  const log = (await page.textContent('.log')) ?? '';
  assert.ok(log.includes(HOSTILE_NAME) && log.includes(HOSTILE_TEXT), `the log shows the markup as text:\n${log}`);
  assert.ok(log.includes(`${HOSTILE_NAME}.txt`), 'the file name is shown as text');
  await shot('07-hostile-live');
  await page.click('button[data-tab=diff]');
  await page.waitForSelector('pre.diff .d-add', WAIT);
  assert.ok(((await page.textContent('pre.diff')) ?? '').includes(`+${HOSTILE_TEXT}`));
  // Discard asks twice (on the button), then the change set is gone and the workspace untouched.
  await page.click('button[data-action=discard]');
  await page.waitForSelector('button[data-action=discard]:has-text("click again")', WAIT);
  await page.click('button[data-action=discard]');
  await page.waitForSelector('.diff-state.diff-discarded', WAIT);
  assert.ok(!fs.existsSync(path.join(ws, `${HOSTILE_NAME}.txt`)), 'a discarded file never reaches the workspace');
  await page.click('button[data-tab=audit]');
  await page.waitForSelector('.verify.ok', WAIT);
  await page.waitForSelector('table.audit tbody tr:has-text("run.end")', WAIT);
  assert.ok(((await page.textContent('table.audit')) ?? '').includes(HOSTILE_NAME));
  await shot('08-hostile-diff');
  // Not one element came from the data: no image, no bold, no second script; nothing ran.
  const dom = await page.evaluate(() => ({
    img: document.querySelectorAll('img').length,
    b: document.querySelectorAll('b').length,
    script: document.querySelectorAll('script').length,
    pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
  }));
  assert.deepEqual(dom, { img: 0, b: 0, script: 1, pwned: null });
});

test('dashboard: a task from the page: model text, tool calls with output, allowed and refused calls, a limit hit, tokens and cost', async () => {
  await page.click('nav a[href="#/new"]');
  await page.check('input[name^=kind][value=task]');
  await page.fill('textarea[name=task]', 'look around, then write notes.txt');
  await page.fill('input[name=policy]', 'dash');
  await page.click('form button[type=submit]');
  await page.waitForURL(/#\/runs\/r-/, WAIT);
  const id = decodeURIComponent(new URL(page.url()).hash.split('/')[2]);
  await page.waitForSelector('.ev-end-ok', WAIT);
  assert.match((await page.textContent('.log pre.model-text')) ?? '', /Looking around the workspace first\./);
  const tools = await page.$$eval('.ev-tool', (cards) =>
    cards.map((c) => ({
      name: c.querySelector('.tool-name')?.textContent,
      state: c.querySelector('.tool-state')?.className,
      output: c.querySelector('.tool-output')?.textContent ?? '',
    })),
  );
  assert.deepEqual(
    tools.map((t) => t.name),
    ['bash', 'bash', 'write_file'],
  );
  assert.match(tools[0].output, /from-the-tool\nsvc-says-hi\ncurl-done/, "the first tool's output is on its card");
  assert.match((await page.textContent('.ev-net-allow')) ?? '', /allowed GET svc\.test:\d+ → 200/);
  assert.match((await page.textContent('.ev-net-deny')) ?? '', /refused GET denied\.test:80: not in network\.allow/);
  assert.match((await page.textContent('.ev-limit')) ?? '', /limit hit: memory/);
  await page.waitForSelector('.answer:not([hidden])', WAIT);
  assert.match((await page.textContent('.answer')) ?? '', /All done: notes\.txt is written\./);
  const facts = (await page.textContent('.facts')) ?? '';
  assert.match(facts, /Tokens6600 in \/ 350 out/);
  // claude-sonnet list prices, $3 and $15 per million tokens: 6600 * 3 + 350 * 15 = $0.025
  assert.match(facts, /Cost\$0\.025/);
  assert.match(facts, /Outbound1 allowed · 1 refused/);
  await shot('11-task-live');
  // Its policy is the named file, explained by name.
  await page.click('button[data-tab=policy]');
  await page.waitForSelector('.policy-lines li', WAIT);
  const policy = (await page.textContent('.policy-lines')) ?? '';
  assert.match(policy, /svc\.test/);
  assert.match(policy, /64 MiB memory/);
  await shot('11b-task-policy');
  await page.click('nav a[href="#/runs"]');
  await page.waitForSelector(`tr[data-run="${id}"] .status-done`, WAIT);
  assert.match((await page.textContent(`tr[data-run="${id}"]`)) ?? '', /6600 in \/ 350 out\$0\.025.*1 allowed · 1 refused/);
  await shot('12-runs-with-task');
});

test('dashboard: the policy page explains a policy in plain words', async () => {
  await page.click('nav a[href="#/policy"]');
  await page.waitForSelector('.policy-lines li', WAIT);
  const text = (await page.textContent('.policy-lines')) ?? '';
  assert.match(text, /Workspace\s*copy-on-write overlay/);
  assert.match(text, /Limits\s*1 CPU, 512 MiB memory/);
  await page.fill('input[name=policy]', 'no-such-policy');
  await page.click('form button[type=submit]');
  await page.waitForSelector('.explained .error', WAIT);
  assert.match((await page.textContent('.explained .error')) ?? '', /no policy named no-such-policy/);
  await page.fill('input[name=policy]', 'strict');
  await page.click('form button[type=submit]');
  await page.waitForSelector('.policy-lines li', WAIT);
  await shot('09-policy');
});

test('dashboard: a schedule is made and deleted from the page', async () => {
  await page.click('nav a[href="#/schedules"]');
  await page.waitForSelector('table.schedules', WAIT);
  await page.fill('input[name=name]', 'hourly-check');
  await page.fill('input[name=whenValue]', '1h');
  await page.fill('input[name=command]', 'make check');
  await page.click('form button[type=submit]');
  await page.waitForSelector('table.schedules tr[data-schedule]', WAIT);
  const row = (await page.textContent('table.schedules tbody')) ?? '';
  assert.match(row, /hourly-check/);
  assert.match(row, /every 1h/);
  assert.match(row, /make check/);
  await shot('10-schedules');
  await page.click('table.schedules button[data-action=delete]');
  await page.waitForSelector('table.schedules tr[data-schedule]', { state: 'detached', ...WAIT });
});

test('dashboard: a run opened after its end shows the output it printed (from its kept logs)', async () => {
  await page.goto(`${base}/#/runs/${appliedRun}`);
  await page.reload();
  await page.waitForSelector('.stream-state:has-text("ended")', WAIT);
  await page.waitForLoadState('networkidle');
  const output = await page.$$eval('.log pre.console', (pres) => pres.map((p) => p.textContent).join(''));
  assert.equal(output, 'hello\nto-stderr\n');
  await shot('13-ended-run-logs');
});

test('dashboard: nothing the page did was refused by the CSP or threw', async () => {
  const csp = await page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []);
  assert.deepEqual(csp, []);
  assert.deepEqual(problems, []);
});
