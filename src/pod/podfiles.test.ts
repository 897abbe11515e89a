// installPodFiles' stamp: a command line's first pod skips reading every pod file back when
// nothing changed, and never when anything it reads or wrote did.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { HostLayout } from './bwrap-argv.js';
import { hostEtcSignature, installPodFiles } from './podfiles.js';

function setup(t: { after: (f: () => void) => void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-podfiles-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const build = path.join(dir, 'build');
  const state = path.join(dir, 'state');
  fs.mkdirSync(build);
  fs.mkdirSync(state);
  for (const n of ['clawpod-fwd', 'clawpod-podexec', 'clawpod-podtty', 'clawpod-podwait']) fs.writeFileSync(path.join(build, n), `#!${n} v1\n`);
  const layout: HostLayout = {
    bwrap: '/usr/bin/bwrap',
    podinit: path.join(build, 'clawpod-podinit'),
    privileged: false,
    stage: path.join(state, 'stage'),
    usrLinks: {},
    etcBinds: ['/etc/ssl/certs'].filter((f) => fs.existsSync(f)),
    etcDir: path.join(state, 'etc'),
    forwarder: path.join(state, 'fwd'),
    executor: path.join(state, 'podexec'),
    podtty: path.join(state, 'podtty'),
    podwait: path.join(state, 'podwait'),
  };
  return { build, state, layout };
}

const ino = (f: string) => fs.lstatSync(f).ino;

test('an unchanged install is left alone; a changed helper, program or copy is written again', (t) => {
  const { build, state, layout } = setup(t);
  const bpf = installPodFiles(state, layout, Buffer.from('program v1'));
  assert.equal(fs.readFileSync(bpf, 'utf8'), 'program v1');
  assert.equal(fs.readFileSync(layout.executor as string, 'utf8'), '#!clawpod-podexec v1\n');
  const passwd = path.join(layout.etcDir, 'root', 'passwd');
  const before = [bpf, layout.executor as string, passwd].map(ino);

  installPodFiles(state, layout, Buffer.from('program v1'));
  assert.deepEqual([bpf, layout.executor as string, passwd].map(ino), before, 'nothing rewritten when nothing changed');

  // A new build of a helper in the checkout.
  fs.writeFileSync(path.join(build, 'clawpod-podexec'), '#!clawpod-podexec v2 (a longer one)\n');
  installPodFiles(state, layout, Buffer.from('program v1'));
  assert.equal(fs.readFileSync(layout.executor as string, 'utf8'), '#!clawpod-podexec v2 (a longer one)\n');

  // Another seccomp program (another clawpod build).
  installPodFiles(state, layout, Buffer.from('program v2'));
  assert.equal(fs.readFileSync(bpf, 'utf8'), 'program v2');
});

test('a pod file changed behind the stamp (another clawpod version, a hand edit) is put back', (t) => {
  const { state, layout } = setup(t);
  installPodFiles(state, layout, Buffer.from('program'));
  const passwd = path.join(layout.etcDir, 'root', 'passwd');
  const want = fs.readFileSync(passwd, 'utf8');

  // Replaced by a rename (as every clawpod writes), then edited in place: both are seen.
  fs.writeFileSync(`${passwd}.new`, 'evil:x:0:0::/:/bin/sh\n', { mode: 0o444 });
  fs.renameSync(`${passwd}.new`, passwd);
  installPodFiles(state, layout, Buffer.from('program'));
  assert.equal(fs.readFileSync(passwd, 'utf8'), want);

  fs.chmodSync(layout.forwarder as string, 0o755);
  fs.writeFileSync(layout.forwarder as string, 'other');
  installPodFiles(state, layout, Buffer.from('program'));
  assert.equal(fs.readFileSync(layout.forwarder as string, 'utf8'), '#!clawpod-fwd v1\n');
  assert.equal(fs.statSync(layout.forwarder as string).mode & 0o777, 0o555);

  // A file dropped into the pod's /etc, and one removed from it.
  fs.writeFileSync(path.join(layout.etcDir, 'root', 'shadow'), 'x');
  fs.rmSync(path.join(layout.etcDir, 'root', 'hosts'));
  installPodFiles(state, layout, Buffer.from('program'));
  assert.ok(fs.existsSync(path.join(layout.etcDir, 'root', 'hosts')), 'the removed file is back');

  // The stamp itself removed or garbled: a full install, the same result.
  fs.writeFileSync(path.join(state, 'podfiles.stamp'), 'garbage');
  fs.rmSync(path.join(layout.etcDir, 'root', 'group'));
  installPodFiles(state, layout, Buffer.from('program'));
  assert.ok(fs.existsSync(path.join(layout.etcDir, 'root', 'group')));
});

test("the host /etc signature sees a link's new target and a file made private", (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-etcsig-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.writeFileSync(path.join(root, 'services'), 'ssh 22/tcp\n', { mode: 0o644 });
  fs.writeFileSync(path.join(root, 'zone-a'), 'zone a');
  fs.symlinkSync(path.join(root, 'zone-a'), path.join(root, 'localtime'));
  const first = hostEtcSignature(root);
  // The same link, a new file behind it (a tzdata upgrade replaces the target).
  fs.writeFileSync(path.join(root, 'zone-a.new'), 'zone a, 2027 rules');
  fs.renameSync(path.join(root, 'zone-a.new'), path.join(root, 'zone-a'));
  const second = hostEtcSignature(root);
  assert.notEqual(second, first, 'a new target behind the same link');
  // chmod o-r: the copy must go (publicHostFile refuses it now), though mtime did not change.
  fs.chmodSync(path.join(root, 'services'), 0o640);
  assert.notEqual(hostEtcSignature(root), second, 'a file made private');
});
