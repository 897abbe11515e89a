import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { approvalQuestion, parseAnswer, terminalApprove } from './approve.js';

/** A fake terminal: what is typed goes in, what is shown is kept. */
function terminal(isTTY = true) {
  const input = Object.assign(new PassThrough(), {
    isTTY,
    setRawMode() {
      return input;
    },
  });
  const output = Object.assign(new PassThrough(), { columns: 60, isTTY });
  let shown = '';
  output.on('data', (d: Buffer) => {
    shown += d.toString();
  });
  return { input, output, shown: () => shown };
}

/** Types `keys` once the question is on the screen. */
async function answerWith(keys: string, tool = 'bash', input: Record<string, unknown> = { command: 'make test' }) {
  const t = terminal();
  const p = terminalApprove({ tool, input }, { input: t.input, output: t.output });
  await new Promise((r) => setImmediate(r));
  t.input.write(keys);
  return { answer: await p, shown: t.shown() };
}

describe('terminal approval', () => {
  test('shows the whole input and the four choices', async () => {
    const long = `echo ${'z'.repeat(300)} | sh`;
    const { answer, shown } = await answerWith('y\r', 'bash', { command: long });
    assert.deepEqual(answer, { answer: 'yes' });
    assert.ok(shown.replace(/\n {2}┆ /g, '').includes(long), 'the whole command, wrapped');
    assert.ok(shown.includes('[y]es / [n]o / [a]lways for bash in this run / [q]uit'));
  });

  test('each answer, Enter is no, and anything else asks again', async () => {
    assert.deepEqual((await answerWith('a\r')).answer, { answer: 'always' });
    assert.deepEqual((await answerWith('q\r')).answer, { answer: 'quit' });
    assert.deepEqual((await answerWith('\r')).answer, { answer: 'no' });
    const again = await answerWith('maybe\rn\r');
    assert.deepEqual(again.answer, { answer: 'no' });
    assert.match(again.shown, /answer y, n, a or q/);
  });

  test('Ctrl-C at the question is quit', async () => {
    assert.deepEqual((await answerWith('\x03')).answer, { answer: 'quit' });
  });

  test('a run being stopped ends the question with quit', async () => {
    const t = terminal();
    const ac = new AbortController();
    const p = terminalApprove({ tool: 'bash', input: { command: 'x' } }, { input: t.input, output: t.output, signal: ac.signal });
    ac.abort();
    assert.deepEqual(await p, { answer: 'quit' });
  });

  test('without a terminal: refused, with the reason and the fix', async () => {
    const t = terminal(false);
    const a = await terminalApprove({ tool: 'web_fetch', input: { url: 'http://x' } }, { input: t.input, output: t.output });
    assert.deepEqual(a, { answer: 'no', reason: 'approval needed but no terminal to ask (run it from a terminal, or remove web_fetch from tools.approve)' });
    assert.equal(t.shown(), '', 'nothing asked');
  });

  test('answers are parsed strictly; the question escapes the tool name', () => {
    assert.equal(parseAnswer(' YES '), 'yes');
    assert.equal(parseAnswer('yep'), null);
    assert.match(approvalQuestion('b\x1b[2Kx'), /b\\x1b\[2Kx/);
  });
});
