import assert from 'node:assert/strict';
import { test } from 'node:test';
import { podStderrStream, POD_CONTINUED, POD_PREFIX, renderApproval, safeText, safeTextStream, wrapBlock } from './terminal.js';

const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b-\u200f]/;

test('safeText shows every control and invisible character as an escape, keeps \\n and \\t', () => {
  assert.equal(safeText('a\x1b]0;title\x07b'), 'a\\x1b]0;title\\x07b');
  assert.equal(safeText('x\ry'), 'x\\ry');
  assert.equal(safeText('\x9b31m'), '\\x9b31m', 'C1 CSI on its own');
  assert.equal(safeText('rm -rf ~ \u202e#gnp.tac'), 'rm -rf ~ \\u{202e}#gnp.tac', 'bidi override');
  assert.equal(safeText('a\u200bb\ufeff'), 'a\\u{200b}b\\u{feff}');
  assert.equal(safeText('line 1\n\tline 2 — ünïcode ✓ 漢字'), 'line 1\n\tline 2 — ünïcode ✓ 漢字');
  assert.doesNotMatch(safeText(String.fromCharCode(...Array.from({ length: 0xa0 }, (_, i) => i)).replace(/[\n\t]/g, '')), CONTROL);
});

test('safeTextStream joins UTF-8 split across chunks and escapes across them', async () => {
  const s = safeTextStream();
  const out: string[] = [];
  s.on('data', (d: Buffer | string) => out.push(d.toString()));
  const bytes = Buffer.from('é\x1b[2K✓');
  for (const b of bytes) s.write(Buffer.from([b]));
  s.end();
  await new Promise((r) => s.on('end', r));
  assert.equal(out.join(''), 'é\\x1b[2K✓');
});

test('a 10 KB command is shown whole, wrapped to the width, its tail included', () => {
  const command = `echo ${'a'.repeat(10_000)}; curl x | sh`;
  const text = renderApproval('bash', { command }, 80);
  const lines = text.trimEnd().split('\n');
  assert.match(lines[0], /^clawpod: the agent asks to run bash with this command:$/);
  for (const l of lines) assert.ok([...l].length <= 80, `${l.length} columns`);
  const shown = lines
    .slice(1)
    .map((l) => l.replace(/^ {2}[│┆] /, ''))
    .join('');
  assert.equal(shown, command);
  assert.match(lines[lines.length - 1], /; curl x \| sh$/);
});

test('lines of a command keep their breaks; wraps are marked apart from them', () => {
  const text = renderApproval('bash', { command: 'make\nmake install', timeout: 30 }, 40);
  assert.deepEqual(text.trimEnd().split('\n'), [
    'clawpod: the agent asks to run bash with this command:',
    '  │ make',
    '  │ make install',
    '  and these settings:',
    '  │ {',
    '  │   "timeout": 30',
    '  │ }',
  ]);
  assert.deepEqual(wrapBlock('x'.repeat(40), 24), ['  │ xxxxxxxxxxxxxxxxxxxx', '  ┆ xxxxxxxxxxxxxxxxxxxx']);
});

test('other tools show their input as pretty JSON with controls escaped', () => {
  const text = renderApproval('write_file', { path: 'run.sh', content: 'echo hi\x1b[2K\u202e\ncurl x | sh\n' }, 100);
  assert.match(text, /"path": "run\.sh"/);
  assert.match(text, /curl x \| sh/);
  assert.doesNotMatch(text, CONTROL);
  assert.match(text, /\\u{202e}/);
});

async function throughPod(chunks: (string | Buffer)[], cap?: number): Promise<string> {
  const s = podStderrStream(cap);
  let out = '';
  s.on('data', (d: Buffer | string) => {
    out += d.toString();
  });
  for (const c of chunks) s.write(typeof c === 'string' ? Buffer.from(c) : c);
  s.end();
  await new Promise((r) => s.on('end', r));
  return out;
}

test("every line of a live pod's stderr is marked, so none can pass for clawpod's own", async () => {
  const forged = 'clawpod: the agent asks to run bash with this command:\n  │ ls\nclawpod: allow this bash call? [y/N] ';
  const out = await throughPod([forged]);
  for (const line of out.split('\n').slice(0, -1)) assert.ok(line.startsWith(POD_PREFIX), JSON.stringify(line));
  assert.ok(out.endsWith('\n'), 'the pod never leaves the cursor mid-line');
  assert.doesNotMatch(out, /^clawpod:/m);
});

test("a line split across chunks is one marked line; a partial line is held, not glued to clawpod's next", async () => {
  assert.equal(await throughPod(['hel', 'lo\nwor', 'ld\n']), `${POD_PREFIX}hello\n${POD_PREFIX}world\n`);
  const s = podStderrStream();
  const got: string[] = [];
  s.on('data', (d: Buffer) => got.push(d.toString()));
  s.write(Buffer.from('no newline yet'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [], 'nothing shown mid-line');
  // A line longer than the hold is shown and its rest marked as a continuation.
  const long = await throughPod(['x'.repeat(5000), 'y\n']);
  assert.match(long, new RegExp(`^${POD_PREFIX}x{5000}\n${POD_CONTINUED}y\n$`));
});

test('a carriage return cannot take the cursor back over the marker', async () => {
  const out = await throughPod(['fine\rclawpod: allow? [y/N]\n', 'crlf\r\n', '\x1b[1G\x1b[2Kclawpod: x\n']);
  assert.equal(out, `${POD_PREFIX}fine\\rclawpod: allow? [y/N]\n${POD_PREFIX}crlf\n${POD_PREFIX}\\x1b[1G\\x1b[2Kclawpod: x\n`);
  assert.doesNotMatch(out, /[\r\x1b]/);
});

test('pod stderr past the cap is counted, not shown, and one line says how much', async () => {
  const out = await throughPod(['a'.repeat(60), '\n', 'b'.repeat(100), Buffer.from('é\n')], 100);
  const lines = out.trimEnd().split('\n');
  assert.equal(lines[lines.length - 1], 'clawpod: further pod stderr dropped (64 bytes)');
  assert.equal(lines[0], `${POD_PREFIX}${'a'.repeat(60)}`);
  assert.equal(lines[1], `${POD_PREFIX}${'b'.repeat(39)}`);
  // A big flood is never held: output stays bounded whatever comes in.
  const big = await throughPod(Array.from({ length: 200 }, () => Buffer.alloc(64 * 1024, 0x41)));
  assert.ok(big.length < 70 * 1024, `${big.length}`);
  assert.match(big, /dropped \(13041664 bytes\)\n$/);
});
