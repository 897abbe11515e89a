import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { RunningPod } from '../pod/types.js';
import type { ResolvedSecret } from '../proxy/types.js';
import { attachTerminal, InterruptRule, type UserTerminal } from './pty.js';

test('Ctrl-C rule: a second Ctrl-C stops the pod only when nothing but the ^C echo came between', () => {
  const r = new InterruptRule();
  assert.equal(r.press(Buffer.from('ls\r')), false);
  assert.equal(r.press(Buffer.from([3])), false, 'the first one is passed on');
  r.output(Buffer.from('^C'));
  assert.equal(r.press(Buffer.from([3])), true, 'the echo is no answer');
  const s = new InterruptRule();
  s.press(Buffer.from([3]));
  s.output(Buffer.from('^C\r\n$ '));
  assert.equal(s.press(Buffer.from([3])), false, 'the program answered: a first one again');
  assert.equal(new InterruptRule().press(Buffer.from([3, 3])), true, 'two in one chunk');
});

test('Ctrl-C rule: three within 2 s stop the pod even when it keeps printing between them', () => {
  let t = 0;
  const chatty = new InterruptRule(() => t);
  for (const at of [0, 600, 1200]) {
    t = at;
    const stop = chatty.press(Buffer.from([3]));
    assert.equal(stop, at === 1200, `press at ${at} ms`);
    chatty.output(Buffer.from('....'));
  }
  const slow = new InterruptRule(() => t);
  for (const at of [0, 1500, 3000, 4500]) {
    t = at;
    assert.equal(slow.press(Buffer.from([3])), false, `presses 1.5 s apart never make a burst (${at} ms)`);
    slow.output(Buffer.from('....'));
  }
});

function fakes() {
  const events: string[] = [];
  const podIn = new PassThrough();
  const podOut = new PassThrough();
  const sizes: string[] = [];
  const pod = {
    stdin: podIn,
    stdout: podOut,
    stop: (why: string) => events.push(`stop ${why}`),
    resize: (r: number, c: number) => sizes.push(`${r}x${c}`),
  } as unknown as RunningPod;
  const input = Object.assign(new PassThrough(), {
    isTTY: true,
    isRaw: false,
    setRawMode(raw: boolean) {
      events.push(`raw ${raw}`);
      this.isRaw = raw;
    },
  });
  const output = Object.assign(new PassThrough(), { isTTY: true, rows: 30, columns: 100 });
  const signals = new EventEmitter();
  const term: UserTerminal = { input, output, signals };
  return { events, podIn, podOut, sizes, pod, input, output, signals, term };
}

test('attachTerminal: raw mode, keys in, output out, size at start and on resize, restored at the end', async () => {
  const f = fakes();
  let typed = '';
  f.podIn.on('data', (d) => {
    typed += d;
  });
  let shown = '';
  f.output.on('data', (d) => {
    shown += d;
  });
  const t = attachTerminal(f.pod, { terminal: f.term });
  assert.deepEqual(f.events, ['raw true']);
  assert.deepEqual(f.sizes, ['30x100']);
  f.input.write('echo hi\r\x03');
  f.podOut.write('hi\r\n');
  f.output.rows = 50;
  f.output.emit('resize');
  assert.deepEqual(f.sizes, ['30x100', '50x100']);
  f.podOut.end('bye\r\n');
  await t.done;
  assert.equal(typed, 'echo hi\r\x03');
  assert.equal(shown, 'hi\r\nbye\r\n');
  assert.deepEqual(f.events, ['raw true', 'raw false']);
  assert.equal(f.signals.listenerCount('SIGTERM') + f.signals.listenerCount('exit'), 0, 'no handler left behind');
});

test('attachTerminal: double Ctrl-C and SIGTERM stop the pod; exit restores; secrets are redacted', async () => {
  const f = fakes();
  const secret = { name: 'TOK', value: 'sekrit-value-1234', placeholder: 'clawpod-secret-TOK-x', hosts: ['a.test'] } as unknown as ResolvedSecret;
  let shown = '';
  f.output.on('data', (d) => {
    shown += d;
  });
  const t = attachTerminal(f.pod, { terminal: f.term, secrets: [secret] });
  f.input.write('\x03');
  f.podOut.write('^C');
  f.input.write('\x03');
  f.signals.emit('SIGTERM', 'SIGTERM');
  assert.deepEqual(f.events, ['raw true', 'stop SIGINT', 'stop SIGTERM']);
  f.signals.emit('exit');
  assert.deepEqual(f.events.slice(-1), ['raw false'], 'an exit on any path puts the terminal back');
  t.restore();
  assert.equal(f.events.filter((e) => e === 'raw false').length, 1, 'once');
  f.podOut.end('value: sekrit-value-1234\r\n');
  await t.done;
  assert.ok(!shown.includes('sekrit-value-1234'));
  assert.match(shown, /value: \[secret:TOK\]/);
});
