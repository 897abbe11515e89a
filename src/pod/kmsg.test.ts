import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOomRecord } from './kmsg.js';

const head = '3,17711,13159499007,-;';
const line = (task: string, pid = 31112) =>
  `${head}oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/clawpod/r-a,task_memcg=/clawpod/r-a,task=${task},pid=${pid},uid=1800226327\n SUBSYSTEM=x\n`;
const killed = (task: string, pid = 31112) =>
  `${head}Memory cgroup out of memory: Killed process ${pid} (${task}) total-vm:321156kB, anon-rss:64428kB, file-rss:5328kB, shmem-rss:0kB, UID:1800226327 pgtables:184kB oom_score_adj:0\n`;

test('the oom-kill line gives the victim, its group, uid and the log time', () => {
  assert.deepEqual(parseOomRecord(line('python3')), { pid: 31112, task: 'python3', group: '/clawpod/r-a', uid: 1800226327, atUs: 13159499007 });
});

test('the Killed process line (not rate-limited) gives the victim by uid', () => {
  assert.deepEqual(parseOomRecord(killed('python3')), { pid: 31112, task: 'python3', group: null, uid: 1800226327, atUs: 13159499007 });
});

test("a pod-chosen name cannot forge the kernel's fields around it", () => {
  // comm is up to 15 bytes of anything: it may look like the fields that follow it.
  const a = parseOomRecord(line(',pid=1,uid=0'));
  assert.equal(a?.pid, 31112);
  assert.equal(a?.task, ',pid=1,uid=0');
  assert.equal(a?.group, '/clawpod/r-a');
  const b = parseOomRecord(line('x,task_memcg=/'));
  assert.equal(b?.group, '/clawpod/r-a', "the first task_memcg= is the kernel's");
  const c = parseOomRecord(killed('a) total-vm:1'));
  assert.equal(c?.task, 'a) total-vm:1');
  assert.equal(c?.uid, 1800226327);
  assert.equal(parseOomRecord(killed('UID:0 pgtables'))?.uid, 1800226327);
});

test('other records are not kills', () => {
  assert.equal(parseOomRecord(`${head}python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0`), null);
  assert.equal(parseOomRecord(`${head}oom-kill:garbled`), null);
});
