// runAlive and a zombie: a supervisor that died but was not waited for still has its pid, its
// start time and /proc/PID, and answers kill(pid, 0); it must count as dead, or its runs would
// stay 'running' until its parent goes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { currentBootId, processStat } from '../util/proc.js';
import { runAlive } from './runs.js';

async function until(fn: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !fn(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(fn(), what);
}

test('a zombie supervisor is dead to runAlive; its live parent, recorded the same way, is alive', async () => {
  // sh starts a child that exits soon and then execs into sleep, which never waits for it. Not at
  // once: a child that ended before the exec could be reaped by sh itself (seen once under load).
  const parent = spawn('sh', ['-c', 'sleep 0.5 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const pid = Number(await new Promise<string>((r) => parent.stdout.once('data', (d) => r(String(d)))));
    await until(() => processStat(pid)?.state === 'Z', `pid ${pid} became a zombie`);
    const zombie = processStat(pid);
    assert.ok(zombie && fs.existsSync(`/proc/${pid}`), 'the zombie still has its /proc entry and start time');
    assert.doesNotThrow(() => process.kill(pid, 0), 'and answers a signal probe');
    const boot = currentBootId();
    assert.equal(runAlive({ pid, pidStart: zombie.start, hostBootId: boot }), false, 'a zombie with a matching record is dead');
    assert.equal(runAlive({ pid, pidStart: null, hostBootId: null }), false, 'an old record (pid only) of a zombie is dead too');
    const live = processStat(parent.pid as number);
    assert.ok(live);
    assert.equal(runAlive({ pid: parent.pid as number, pidStart: live.start, hostBootId: boot }), true, 'the control: a live process is alive');
  } finally {
    parent.kill('SIGKILL');
  }
});
