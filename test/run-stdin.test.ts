// `clawpod run -`: the task read from stdin, as scripts pipe it in; off a terminal only the
// answer is on stdout, so `clawpod run - < task.txt > answer.txt` keeps just the answer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { startFakeAnthropic } from './fakes/anthropic.js';
import { BIN, tmpDir, workspace } from './helpers.js';

function runWithStdin(args: string[], input: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: workspace(),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/root', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

test('run - reads the task from stdin; an empty one is refused in one line', async () => {
  const fake = await startFakeAnthropic([{ text: 'The answer is 42.', stopReason: 'end_turn' }]);
  try {
    const home = tmpDir('run-stdin');
    const env = { CLAWPOD_HOME: home, ANTHROPIC_API_KEY: 'sk-ant-test-stdin', ANTHROPIC_BASE_URL: fake.url };
    const r = await runWithStdin(['run', '-'], 'what is six times seven?\n', env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'The answer is 42.\n');
    assert.match(JSON.stringify(fake.requests[0].body), /what is six times seven\?/);
    const empty = await runWithStdin(['run', '-'], '  \n', env);
    assert.equal(empty.code, 125);
    assert.match(empty.stderr, /^clawpod: the task read from stdin is empty/);
  } finally {
    await fake.close();
  }
});
