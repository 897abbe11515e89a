// Pod-chosen bytes on the host terminal: the audit trail of a run whose files have hostile
// names prints inert, and files that run code when a tool opens the folder are flagged first.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { cli, tmpDir, workspace } from './helpers.js';

// Everything a terminal acts on or that hides or reorders text (C0/C1, DEL, bidi, zero-width,
// tag characters, Hangul fillers, soft hyphen, variation selectors).
const RAW =
  /[\x00-\x09\x0b-\x1f\x7f-\x9f\xad\u115f\u1160\u200b-\u200f\u202a-\u202e\u2066-\u2069\u3164\ufe00-\ufe0f\uffa0\u{e0000}-\u{e007f}\u{e0100}-\u{e01ef}]/u;

let home: string;
before(() => {
  home = tmpDir('home');
});

test('audit show prints hostile file names escaped, the way the diff does', async () => {
  const ws = workspace();
  const names = ['rtl\u202egnp.sh', 'csi\u009b2J', 'tag\u{e0041}\u{e0042}', 'esc\x1b]0;t\x07', 'fill\u3164\u00ad\ufe0f'];
  const script = names.map((n) => `printf x > '${n}'`).join('; ');
  const r = await cli(['exec', '--', 'sh', '-c', script], { home, cwd: ws });
  assert.equal(r.code, 0, r.stderr);
  const show = await cli(['audit', 'show', r.runId!], { home });
  assert.equal(show.code, 0, show.stderr);
  assert.equal(show.stdout.match(RAW), null, JSON.stringify(show.stdout.match(RAW)));
  assert.ok(show.stdout.includes('rtl\\u202egnp.sh'), show.stdout);
  assert.ok(show.stdout.includes('csi\\x9b2J'), show.stdout);
  assert.ok(show.stdout.includes('tag\\u{e0041}\\u{e0042}'), show.stdout);
  assert.ok(show.stdout.includes('fill\\u3164\\xad\\ufe0f'), show.stdout);
});

test("runs diff flags the newer open-the-folder paths and the workspace's own core.hooksPath", async () => {
  const ws = workspace({ 'a.txt': 'a\n' });
  fs.mkdirSync(path.join(ws, '.git'));
  fs.writeFileSync(path.join(ws, '.git', 'config'), '[core]\n\tbare = false\n[Core]\n\tHooksPath = "tools/hooks"\n');
  const files = [
    '.cargo/config.toml',
    '.gemini/settings.json',
    'CLAUDE.local.md',
    '.githooks/pre-commit',
    '.zed/settings.json',
    '.nvim.lua',
    '.exrc',
    '.mvn/jvm.config',
    'bunfig.toml',
    'tools/hooks/pre-push',
    'tools/other.txt',
  ];
  const script = files.map((f) => `mkdir -p "$(dirname '${f}')"; echo x > '${f}'`).join('; ');
  const r = await cli(['exec', '--', 'sh', '-c', script], { home, cwd: ws });
  assert.equal(r.code, 0, r.stderr);
  const diff = await cli(['runs', 'diff', r.runId!], { home });
  assert.equal(diff.code, 0, diff.stderr);
  const head = diff.stdout.slice(0, diff.stdout.indexOf('diff --git'));
  for (const f of files.slice(0, -2)) assert.match(head, new RegExp(`^# {3}[ !] ${f.replace(/\./g, '\\.')} \\(added\\)`, 'm'), f);
  assert.match(head, /^# {3}! tools\/hooks\/pre-push \(added\): a git hook/m, head);
  assert.doesNotMatch(head, /tools\/other\.txt/);
});
