// Unit tests with a scripted PodOps: input checks, output bounds, result shapes. The real pod is
// exercised in test/tools.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PodOps } from '../types.js';
import { boundText, utf8Chunks } from './common.js';
import { countOccurrences } from './files.js';
import { createTools, filterTools, toolByName } from './index.js';
import { parseHeaders } from './web.js';

type Reply = Partial<{ exitCode: number; stdout: string | Buffer; stderr: string; truncated: boolean; timedOut: boolean }>;
interface Call {
  argv: string[];
  opts?: { timeoutMs?: number; maxOutput?: number };
}

/** A PodOps answering each exec with the next reply; records what was asked. */
function fakeOps(...replies: (Reply | Error)[]): PodOps & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    async exec(argv, opts) {
      calls.push({ argv, opts });
      const r = replies.shift() ?? {};
      if (r instanceof Error) throw r;
      const stdout = typeof r.stdout === 'string' ? Buffer.from(r.stdout) : (r.stdout ?? Buffer.alloc(0));
      return { exitCode: r.exitCode ?? 0, stdout, stderr: Buffer.from(r.stderr ?? ''), truncated: r.truncated ?? false, timedOut: r.timedOut ?? false };
    },
  };
}

const tools = createTools();
const tool = (name: string) => {
  const t = toolByName(tools, name);
  assert.ok(t, name);
  return t;
};

test('the seven tools exist, each with an object input schema listing its required fields', () => {
  assert.deepEqual(
    tools.map((t) => t.spec.name),
    ['bash', 'read_file', 'write_file', 'edit_file', 'glob', 'grep', 'web_fetch'],
  );
  for (const t of tools) {
    assert.equal(t.spec.input_schema.type, 'object');
    const props = t.spec.input_schema.properties as Record<string, unknown>;
    for (const r of t.spec.input_schema.required as string[]) assert.ok(props[r], `${t.spec.name}.${r}`);
  }
  assert.equal(toolByName(tools, 'nope'), undefined);
});

test('a missing or wrong-typed required field is an error result naming the field, and nothing runs', async () => {
  for (const t of tools) {
    const required = t.spec.input_schema.required as string[];
    const ops = fakeOps();
    const missing = await t.run({}, ops);
    assert.equal(missing.isError, true);
    assert.match(missing.content, new RegExp(`"${required[0]}"`));
    const wrong = await t.run(Object.fromEntries(required.map((f) => [f, 42])), ops);
    assert.equal(wrong.isError, true);
    assert.match(wrong.content, new RegExp(`"${required[0]}" must be a string, got a number`));
    assert.equal(ops.calls.length, 0, t.spec.name);
  }
  const notObject = await tool('bash').run(null as unknown as Record<string, unknown>, fakeOps());
  assert.equal(notObject.isError, true);
  const badTimeout = await tool('bash').run({ command: 'true', timeout_ms: 'soon' }, fakeOps());
  assert.match(badTimeout.content, /"timeout_ms" must be a number/);
  const badPath = await tool('grep').run({ pattern: 'x', path: ['a'] }, fakeOps());
  assert.match(badPath.content, /"path" must be a string, got an array/);
});

test('a failing pod (exec throws) becomes an error result, never an exception', async () => {
  for (const t of tools) {
    const input = Object.fromEntries((t.spec.input_schema.required as string[]).map((f) => [f, f === 'url' ? 'http://x.test/' : `v-${f}`]));
    const r = await t.run(input, fakeOps(new Error('the pod has ended')));
    assert.equal(r.isError, true, t.spec.name);
    assert.match(r.content, /the pod has ended/);
  }
});

test('bash: labelled stderr, the exit code when non-zero, default and capped timeouts, timeout as an error', async () => {
  const ops = fakeOps({ stdout: 'out\n', stderr: 'warn\n', exitCode: 2 }, { stdout: 'fine\n' }, { timedOut: true, exitCode: 124, stdout: 'partial' });
  const failed = await tool('bash').run({ command: 'x' }, ops);
  assert.deepEqual(failed, { content: 'out\n[stderr]\nwarn\n[exit code: 2]', isError: true });
  assert.equal(ops.calls[0].opts?.timeoutMs, 120_000);
  assert.equal(ops.calls[0].argv.at(-1), 'x');
  const fine = await tool('bash').run({ command: 'y', timeout_ms: 9_999_999 }, ops);
  assert.deepEqual(fine, { content: 'fine', isError: false });
  assert.equal(ops.calls[1].opts?.timeoutMs, 600_000);
  const slow = await tool('bash').run({ command: 'z', timeout_ms: 1500 }, ops);
  assert.equal(slow.isError, true);
  assert.match(slow.content, /timed out after 1\.5 s/);
  assert.match(slow.content, /partial/);
  assert.equal((await tool('bash').run({ command: 'z', timeout_ms: -1 }, ops)).isError, true);
});

test('bash: output past the bound is cut with a note saying how much more there was', async () => {
  const big = Buffer.alloc(2 * 1024 * 1024, 'a');
  const r = await tool('bash').run({ command: 'x' }, fakeOps({ stdout: big }));
  assert.ok(r.content.length < 70 * 1024);
  assert.match(r.content, /\[output truncated: 1\.9 MiB more\]$/);
  const dropped = await tool('bash').run({ command: 'x' }, fakeOps({ stdout: 'a', truncated: true }));
  assert.match(dropped.content, /more than 4\.0 MiB/);
});

test('boundText never splits a UTF-8 character; utf8Chunks round-trips within the size', () => {
  const s = Buffer.from('é'.repeat(10));
  assert.equal(boundText(s, 5), 'éé\n[output truncated: 16 B more]');
  const text = `${'ü€😀'.repeat(5000)}tail`;
  const chunks = utf8Chunks(text, 1000);
  assert.equal(chunks.join(''), text);
  for (const c of chunks) assert.ok(Buffer.byteLength(c) <= 1000);
  assert.deepEqual(utf8Chunks('', 10), []);
});

test('write_file: NUL bytes and oversized content are refused before the pod is asked; big content goes in argv chunks', async () => {
  const ops = fakeOps({});
  const nul = await tool('write_file').run({ path: 'a', content: 'a\0b' }, ops);
  assert.match(nul.content, /NUL/);
  const huge = await tool('write_file').run({ path: 'a', content: 'x'.repeat(901 * 1024) }, ops);
  assert.match(huge.content, /over the 900\.0 KiB limit/);
  assert.equal(ops.calls.length, 0);
  const ok = await tool('write_file').run({ path: 'dir/a.txt', content: 'y'.repeat(300 * 1024) }, ops);
  assert.deepEqual(ok, { content: `wrote ${300 * 1024} bytes to /workspace/dir/a.txt`, isError: false });
  const argv = ops.calls[0].argv;
  assert.equal(argv[4], '/workspace/dir/a.txt');
  assert.equal(argv.slice(5).join('').length, 300 * 1024);
  for (const a of argv) assert.ok(Buffer.byteLength(a) < 128 * 1024);
});

test('read_file: numbered lines, cut at 2000 with a note; binary reported, not dumped', async () => {
  const lines = Array.from({ length: 2500 }, (_, i) => `line ${i + 1}`).join('\n');
  const long = await tool('read_file').run({ path: 'big.txt' }, fakeOps({ stdout: `${Buffer.byteLength(lines)}\n${lines}` }));
  assert.equal(long.isError, false);
  assert.match(long.content, /^ {5}1\tline 1\n/);
  assert.match(long.content, / 2000\tline 2000\n\[file truncated: showed lines 1-2000 .*sed -n '2001,4000p' \/workspace\/big.txt\]$/);
  assert.doesNotMatch(long.content, /line 2001/);
  const bin = await tool('read_file').run({ path: '/bin/x' }, fakeOps({ stdout: Buffer.concat([Buffer.from('5000\n'), Buffer.from([0x7f, 0x45, 0, 1])]) }));
  assert.deepEqual(bin, { content: '/bin/x is a binary file (4.9 KiB); not shown', isError: true });
  const missing = await tool('read_file').run({ path: 'n' }, fakeOps({ exitCode: 2, stderr: '/workspace/n: no such file or directory\n' }));
  assert.deepEqual(missing, { content: '/workspace/n: no such file or directory', isError: true });
});

test('edit_file: 0 and 2 matches are errors saying how many; 1 match writes the replaced text', async () => {
  const none = await tool('edit_file').run({ path: 'f', old_string: 'zz', new_string: 'q' }, fakeOps({ stdout: 'a b a' }));
  assert.match(none.content, /0 matches/);
  const two = await tool('edit_file').run({ path: 'f', old_string: 'a', new_string: 'q' }, fakeOps({ stdout: 'a b a' }));
  assert.match(two.content, /occurs 2 times/);
  const ops = fakeOps({ stdout: 'a b $& c' }, {});
  const one = await tool('edit_file').run({ path: 'f', old_string: 'b', new_string: '$&$1' }, ops);
  assert.equal(one.isError, false);
  assert.equal(ops.calls[1].argv.slice(5).join(''), 'a $&$1 $& c', 'the replacement is literal');
  assert.equal(countOccurrences('aaa', 'aa'), 2);
});

test('glob and grep: sorted and bounded; grep\'s "no matches" is not an error, a bad pattern is', async () => {
  const paths = Array.from({ length: 1200 }, (_, i) => `f${String(1200 - i).padStart(4, '0')}`);
  const g = await tool('glob').run({ pattern: '**/*' }, fakeOps({ stdout: `${paths.join('\0')}\0` }));
  const shown = g.content.split('\n');
  assert.equal(shown[0], 'f0001');
  assert.equal(shown[999], 'f1000');
  assert.equal(shown[1000], '[output truncated: 200 more paths; use a narrower pattern]');
  const none = await tool('grep').run({ pattern: 'x' }, fakeOps({ exitCode: 1 }));
  assert.deepEqual(none, { content: 'no matches for x in /workspace', isError: false });
  const bad = await tool('grep').run({ pattern: '(' }, fakeOps({ exitCode: 2, stderr: 'grep: Unmatched ( or \\(' }));
  assert.equal(bad.isError, true);
  const many = Array.from({ length: 700 }, (_, i) => `a.txt:${i + 1}:${'x'.repeat(i === 0 ? 1000 : 3)}`).join('\n');
  const lots = await tool('grep').run({ pattern: 'x', path: 'src' }, fakeOps({ stdout: `${many}\n` }));
  assert.match(lots.content, /^a\.txt:1:x{390,400} \[line cut\]\n/);
  assert.match(lots.content, /\[output truncated: 200 more lines; narrow the pattern or path\]$/);
});

test('web_fetch: no proxy means no network; a proxy 403 with X-Clawpod-Deny is quoted; text bodies come back', async () => {
  const off = await tool('web_fetch').run({ url: 'https://example.com/' }, fakeOps({ exitCode: 90 }));
  assert.deepEqual(off, { content: 'web_fetch: the policy allows no hosts, so the sandbox has no network', isError: true });
  const denied = await tool('web_fetch').run(
    { url: 'https://evil.test/' },
    fakeOps({
      exitCode: 56,
      stderr: 'HTTP/1.1 403 Forbidden\r\nX-Clawpod-Deny: host evil.test is not in network.allow\r\n\r\ncurl: (56) CONNECT tunnel failed, response 403\n',
    }),
  );
  assert.deepEqual(denied, {
    content: "blocked by the sandbox's network policy: host evil.test is not in network.allow (HTTP/1.1 403 Forbidden)",
    isError: true,
  });
  const page = await tool('web_fetch').run(
    { url: 'https://ok.test/' },
    fakeOps({
      stdout: 'hello',
      stderr: 'HTTP/1.1 200 Connection established\r\n\r\nHTTP/2 200 \r\ncontent-type: text/plain\r\n\r\n',
    }),
  );
  assert.deepEqual(page, { content: 'HTTP/2 200\ncontent-type: text/plain\n\nhello', isError: false });
  const png = await tool('web_fetch').run(
    { url: 'http://ok.test/a.png' },
    fakeOps({ stdout: Buffer.from([137, 80, 0]), stderr: 'HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n\r\n' }),
  );
  assert.match(png.content, /\[binary body \(image\/png, 3 B\) not shown\]/);
  assert.match((await tool('web_fetch').run({ url: 'file:///etc/passwd' }, fakeOps())).content, /must be http or https/);
  assert.match((await tool('web_fetch').run({ url: 'not a url' }, fakeOps())).content, /"url" is not a valid URL/);
  assert.equal(parseHeaders('HTTP/1.1 404 Not Found\r\n\r\n').code, 404);
});

test('filterTools: deny wins over allow, an allow list admits only what it names, unknown names are ignored', () => {
  const names = (ts: typeof tools) => ts.map((t) => t.spec.name);
  assert.deepEqual(names(filterTools(tools, {})), names(tools));
  assert.deepEqual(names(filterTools(tools, { deny: ['bash', 'no_such_tool'] })), ['read_file', 'write_file', 'edit_file', 'glob', 'grep', 'web_fetch']);
  assert.deepEqual(names(filterTools(tools, { allow: ['read_file', 'bash', 'mystery'], deny: ['bash'] })), ['read_file']);
  assert.deepEqual(names(filterTools(tools, { allow: ['mystery'] })), []);
});
