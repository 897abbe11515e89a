// The warm-up migration moves nothing: it writes clawpod's own pid into the very group it is in.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { warmCgroupMigration, type CgroupLayout } from './cgroups.js';

test('the warm-up writes our pid into our own pids group, and only on cgroup v1', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-cgwarm-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const own = path.join(root, 'pids', 'user.slice', 'session-1.scope');
  fs.mkdirSync(own, { recursive: true });
  fs.writeFileSync(path.join(own, 'cgroup.procs'), `${process.pid}\n`);
  fs.utimesSync(path.join(own, 'cgroup.procs'), 0, 0);
  const self = path.join(root, 'self-cgroup');
  fs.writeFileSync(self, '12:memory:/elsewhere\n8:pids:/user.slice/session-1.scope\n0::/\n');
  const v1: CgroupLayout = { mode: 'v1', parents: { pids: path.join(root, 'pids', 'clawpod') }, missing: {} };
  assert.equal(warmCgroupMigration(v1, self), path.join(own, 'cgroup.procs'));
  // (A regular file stands in for cgroup.procs: the write of our pid shows in its mtime.)
  const written = () => fs.statSync(path.join(own, 'cgroup.procs')).mtimeMs > 0;
  for (let i = 0; i < 100 && !written(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(written(), 'our pid was written');
  assert.equal(fs.readFileSync(path.join(own, 'cgroup.procs'), 'utf8'), `${process.pid}\n`);
  // In a cgroup namespace the path is relative to its root: the same path under the host's mount
  // can be another group (here the hierarchy's root). One that does not list us is never written.
  fs.writeFileSync(path.join(root, 'pids', 'cgroup.procs'), '1\n2\n');
  fs.writeFileSync(self, '8:pids:/\n');
  assert.equal(warmCgroupMigration(v1, self), null, 'a group clawpod is not in is never written');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(fs.readFileSync(path.join(root, 'pids', 'cgroup.procs'), 'utf8'), '1\n2\n');
  assert.equal(warmCgroupMigration({ mode: 'v2', parents: { kill: root }, missing: {} }, self), null, 'v2 needs none');
  fs.writeFileSync(self, '8:pids:/../../etc\n');
  assert.equal(warmCgroupMigration(v1, self), null, 'a path out of the hierarchy is never written');
  fs.writeFileSync(self, '8:pids:/gone\n');
  assert.equal(warmCgroupMigration(v1, self), null, 'a group that is not there: nothing');
});
