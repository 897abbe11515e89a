// Set-id files through writable attachments (issue 7, item 2). `workspace: rw`, `mode: rw` mounts
// and `--memory` write straight to the host through the owner idmap, so a pod's chmod 4755 on a
// root-owned workspace would leave a root setuid binary on the host. The seccomp filter refuses
// every mode argument with S_ISUID/S_ISGID; the prelude's end-of-pod sweep clears what got past
// it (here: the setgid a new directory inherits, which no syscall argument shows).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { startFakeAnthropic } from './fakes/anthropic.js';
import { auditEvents, cli, IS_ROOT, PROBE_PRELUDE, probeOutcomes, policyFile, ROOT, tmpDir, workspace } from './helpers.js';

const SKIP = IS_ROOT ? false : 'needs root: the host files must be root-owned to show a root setuid binary';
const SETID = 0o6000;
let home: string;
before(() => {
  home = tmpDir('home');
});

/** Every entry under dir (not following symlinks) whose mode has a set-id bit, as "rel mode uid". */
function setidEntries(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      if (st.mode & SETID) found.push(`${path.relative(dir, p)} ${(st.mode & 0o7777).toString(8)} uid=${st.uid}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return found.sort();
}

const modeOf = (p: string) => fs.lstatSync(p).mode & 0o7777;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Raw syscalls (numbers written out here, independent of src/pod/syscalls.ts) and libc/python
// paths, each trying to leave a set-id file in the current directory. Prints SUCCEEDED:/FAILED:.
const PY_PROBE = String.raw`
import ctypes, os, stat, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
P = sys.argv[1]
X86 = os.uname().machine == "x86_64"
NR = ({"chmod": 90, "fchmodat": 268, "fchmodat2": 452, "creat": 85, "open": 2, "openat": 257, "mkdir": 83,
       "mkdirat": 258, "mknod": 133, "mknodat": 259, "openat2": 437} if X86 else
      {"fchmodat": 53, "fchmodat2": 452, "openat": 56, "mkdirat": 34, "mknodat": 33, "openat2": 437})
AT = -100
def sc(name, *args):
    conv = [ctypes.c_char_p(a.encode()) if isinstance(a, str) else ctypes.c_char_p(a) if isinstance(a, bytes)
            else ctypes.c_long(a) for a in args]
    r = libc.syscall(ctypes.c_long(NR[name]), *conv)
    if r < 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    if name in ("open", "openat", "creat", "openat2"): os.close(r)
def t(name, fn, need=None):
    if need is not None and need not in NR: return
    try: fn(); print(f"SUCCEEDED:{P}{name}")
    except OSError as e: print(f"FAILED:{P}{name}\n# {name}: errno {e.errno}")
def new(name, mode=0o644):
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY, mode)); return name
def fchmod():
    fd = os.open("p_fchmod", os.O_CREAT | os.O_WRONLY, 0o644); os.fchmod(fd, 0o6755); os.close(fd)
def tmpfile():
    fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o4755)
    if libc.linkat(AT, f"/proc/self/fd/{fd}".encode(), AT, b"p_tmpfile", 0x400) != 0:  # AT_SYMLINK_FOLLOW
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
def xattr_cap():
    # VFS_CAP_REVISION_2 | EFFECTIVE, CAP_SYS_ADMIN permitted: what setcap cap_sys_admin+ep writes.
    os.setxattr(new("p_fcap", 0o755), "security.capability", struct.pack("<IIIII", 0x02000001, 1 << 21, 0, 0, 0))
OC = os.O_CREAT | os.O_WRONLY
t("py_chmod", lambda: os.chmod(new("p_chmod"), 0o4755))
t("py_chmod_g", lambda: os.chmod(new("p_chmod_g"), 0o2755))
t("py_fchmod", fchmod)
t("py_open_creat", lambda: os.close(os.open("p_open", OC, 0o4755)))
t("py_mknod", lambda: os.mknod("p_mknod", stat.S_IFREG | 0o4755))
t("py_tmpfile", tmpfile)
t("py_mkdir", lambda: os.mkdir("p_mkdir", 0o2755))
t("py_fcap", xattr_cap)
t("sys_chmod", lambda: sc("chmod", new("s_chmod"), 0o4755), "chmod")
t("sys_fchmodat", lambda: sc("fchmodat", AT, new("s_fchmodat"), 0o2755), "fchmodat")
t("sys_fchmodat2", lambda: sc("fchmodat2", AT, new("s_fchmodat2"), 0o4755, 0), "fchmodat2")
t("sys_fchmodat_hi", lambda: sc("fchmodat", AT, new("s_fchmodat_hi"), 0x7fff00000000 | 0o4755), "fchmodat")
t("sys_creat", lambda: sc("creat", "s_creat", 0o4755), "creat")
t("sys_open", lambda: sc("open", "s_open", OC, 0o4755), "open")
t("sys_openat", lambda: sc("openat", AT, "s_openat", OC, 0o6755), "openat")
t("sys_openat2", lambda: sc("openat2", AT, "s_openat2", struct.pack("<QQQ", OC, 0o4755, 0), 24), "openat2")
t("sys_mknod", lambda: sc("mknod", "s_mknod", stat.S_IFREG | 0o4755, 0), "mknod")
t("sys_mknodat", lambda: sc("mknodat", AT, "s_mknodat", stat.S_IFREG | 0o2755, 0), "mknodat")
t("sys_mkdir", lambda: sc("mkdir", "s_mkdir", 0o4755), "mkdir")
t("sys_mkdirat", lambda: sc("mkdirat", AT, "s_mkdirat", 0o2755), "mkdirat")
# Controls: ordinary modes, and a mode register full of set-id garbage where the call creates nothing.
t("ctl_chmod", lambda: os.chmod(new("c_chmod"), 0o755))
t("ctl_open_creat", lambda: os.close(os.open("c_open", OC, 0o755)))
t("ctl_mkdir", lambda: os.mkdir("c_mkdir", 0o755))
t("ctl_opendir_garbage_mode", lambda: sc("openat", AT, ".", os.O_RDONLY | os.O_DIRECTORY, 0o7777), "openat")
t("ctl_open_existing_garbage_mode", lambda: sc("openat", AT, "c_open", os.O_RDONLY, 0o6777), "openat")
`;

// coreutils and friends, as an agent would type them.
const SH_PROBE = (p: string) =>
  [
    `t ${p}sh_chmod_4755 'echo > h1 && chmod 4755 h1'`,
    `t ${p}sh_chmod_2755 'echo > h2 && chmod 2755 h2'`,
    `t ${p}sh_chmod_us 'echo > h3 && chmod u+s,g+s h3'`,
    `t ${p}sh_chmod_gs_dir 'mkdir h4 && chmod g+s h4'`,
    `t ${p}sh_mkdir_m 'mkdir -m 2755 h5'`,
    `t ${p}sh_install_m 'install -m 4755 /bin/true h6'`,
    `t ${p}sh_cp_p 'cp -p /ro/suid h7 && test -u h7'`,
    `t ${p}sh_ln_from_ro 'ln /ro/suid h8'`,
    `t ${p}sh_mv_from_ro 'mv /ro/suid h9'`,
    `t ${p}ctl_sh_chmod 'echo > h0 && chmod 755 h0'`,
  ].join('\n');

describe('no set-id file reaches the host through a writable attachment', { skip: SKIP }, () => {
  test('a file with capabilities, or setgid without group-exec, in a writable workspace refuses the pod', async () => {
    // security.capability survives a write through a shared mapping like a set-id bit does; a
    // setgid 2644 file becomes a setgid program through an ACL that keeps the bit.
    const caps = workspace({ 'tool': '#!/bin/sh\n' });
    const blob = 'struct.pack("<IIIII", 0x02000001, 1 << 7, 0, 0, 0)'; // VFS_CAP_REVISION_2, effective, cap_setuid
    const set = spawnSync('python3', ['-c', `import os,struct; os.setxattr(${JSON.stringify(path.join(caps, 'tool'))}, "security.capability", ${blob})`], {
      encoding: 'utf8',
    });
    assert.equal(set.status, 0, set.stderr);
    const sgid = workspace({ 'locked': 'data\n' });
    fs.chmodSync(path.join(sgid, 'locked'), 0o2644);
    const rw = policyFile('version: 1\nfilesystem: { workspace: rw }\n');
    for (const [ws, name] of [
      [caps, 'tool'],
      [sgid, 'locked'],
    ] as const) {
      const r = await cli(['exec', '--policy', rw, '--', 'true'], { home, cwd: ws });
      assert.equal(r.code, 125, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`set-id or capability-bearing file\\(s\\) \\(first: ${name} in `));
    }
  });

  test('a set-id program already in a writable attachment refuses the pod (a mapped write would keep its bit)', async () => {
    const ws = workspace({ 'tool': '#!/bin/sh\necho hi\n' });
    fs.chmodSync(path.join(ws, 'tool'), 0o4755);
    const data = workspace({ 'sub/prog': '#!/bin/sh\n' });
    fs.chmodSync(path.join(data, 'sub', 'prog'), 0o2755);
    const marker = `touched-${process.pid}`;
    for (const [p, dir] of [
      [policyFile('version: 1\nfilesystem: { workspace: rw }\n'), ws],
      [policyFile(`version: 1\nfilesystem:\n  mounts:\n    - { host: ${data}, path: /data, mode: rw }\n`), workspace()],
    ] as const) {
      const r = await cli(['exec', '--policy', p, '--', 'sh', '-c', `echo x >> /workspace/tool; touch /workspace/${marker} /data/${marker}`], {
        home,
        cwd: dir,
      });
      assert.equal(r.code, 125, r.stdout + r.stderr);
      assert.match(r.stderr, /refusing a writable (workspace|mount) holding 1 set-id or capability-bearing file\(s\) \(first: (tool|prog) in /);
    }
    assert.equal(fs.readFileSync(path.join(ws, 'tool'), 'utf8'), '#!/bin/sh\necho hi\n', 'the pod never ran');
    assert.equal(modeOf(path.join(ws, 'tool')), 0o4755, "the user's file is left as it was");
    assert.ok(!fs.existsSync(path.join(data, marker)));
    // Control: overlay mode works on the same workspace (the pod writes a copy, stripped on harvest).
    const ok = await cli(['exec', '--', 'sh', '-c', 'echo x >> /workspace/tool'], { home, cwd: ws });
    assert.equal(ok.code, 0, ok.stderr);
  });

  test('workspace: rw and a mode: rw mount, by chmod, open, mknod, mkdir, install, cp, ln', async () => {
    // (A set-id program already in a writable attachment refuses the pod: see the next test.)
    const ws = workspace();
    const data = workspace();
    const ro = workspace({ 'suid': '#!/bin/sh\n' });
    fs.mkdirSync(path.join(ws, 'pre_sgid'));
    fs.chmodSync(path.join(ws, 'pre_sgid'), 0o2775);
    fs.chmodSync(path.join(ro, 'suid'), 0o4755);
    await sleep(2100); // the sweep counts anything changed from one second before the prelude started
    const p = policyFile(
      [
        'version: 1',
        'filesystem:',
        '  workspace: rw',
        '  mounts:',
        `    - { host: ${data}, path: /data, mode: rw }`,
        `    - { host: ${ro}, path: /ro }`,
        '',
      ].join('\n'),
    );
    const script = ['/workspace', '/data']
      .map((d) => {
        const pre = d.slice(1) + '.';
        return `cd ${d}\n${SH_PROBE(pre)}\npython3 -c '${PY_PROBE.replace(/'/g, `'"'"'`)}' ${pre}`;
      })
      .join('\n');
    const r = await cli(['exec', '--policy', p, '--', 'bash', '-c', PROBE_PRELUDE + script], { home, cwd: ws });
    const out = probeOutcomes(r.stdout);
    const leaked = [...setidEntries(ws).map((e) => `ws/${e}`), ...setidEntries(data).map((e) => `data/${e}`)].filter((e) => !/^ws\/pre_(suid|sgid) /.test(e));
    assert.deepEqual(leaked, [], `set-id files on the host: ${leaked.join('; ')}\n${r.stdout}${r.stderr}`);
    for (const d of ['workspace.', 'data.']) {
      const attacks = Object.keys(out).filter((n) => n.startsWith(d) && !n.includes('ctl_'));
      assert.ok(attacks.length >= 20, `${d}: ${attacks.length} probes ran\n${r.stdout}${r.stderr}`);
      for (const n of attacks) assert.equal(out[n], 'FAILED', `${n} succeeded in the pod\n${r.stdout}`);
      for (const n of Object.keys(out).filter((k) => k.startsWith(d) && k.includes('ctl_'))) {
        assert.equal(out[n], 'SUCCEEDED', `control ${n} failed: ordinary modes must keep working\n${r.stdout}`);
      }
    }
    assert.equal(modeOf(path.join(ws, 'h0')), 0o755);
    assert.equal(modeOf(path.join(data, 'c_chmod')), 0o755);
    assert.equal(modeOf(path.join(ws, 'pre_sgid')), 0o2775, 'a setgid directory the user made survives');
    assert.equal(modeOf(path.join(ro, 'suid')), 0o4755);
    // Controls for the probes that fail for other reasons than the filter: root on the host can set
    // a file capability (the pod has no CAP_SETFCAP), and hard-link across directories of one
    // filesystem (the pod's ln crosses a mount: EXDEV).
    const fcap = path.join(tmpDir('fcap'), 'f');
    const ctl = spawnSync('python3', [
      '-c',
      'import os, struct, sys; open(sys.argv[1], "w").close(); ' +
        'os.setxattr(sys.argv[1], "security.capability", struct.pack("<IIIII", 0x02000001, 1 << 21, 0, 0, 0))',
      fcap,
    ]);
    assert.equal(ctl.status, 0, String(ctl.stderr));
    fs.linkSync(path.join(ro, 'suid'), path.join(data, 'host-link'));
  });

  test('--memory: the agent cannot leave a setuid file in $CLAWPOD_HOME/memory', async () => {
    const fake = await startFakeAnthropic([
      {
        toolUses: [
          {
            name: 'bash',
            input: {
              command:
                'cd /memory && echo > m1 && chmod 4755 m1; ' +
                'cp /bin/true m2 && chmod u+s m2; mkdir d; ls -l; ' +
                'python3 -c \'import os; os.close(os.open("m3", os.O_CREAT|os.O_WRONLY, 0o4755))\'',
            },
          },
        ],
      },
      { text: 'done', stopReason: 'end_turn' },
    ]);
    try {
      const mem = path.join(home, 'memory', 'setid');
      fs.mkdirSync(mem, { recursive: true });
      fs.chmodSync(mem, 0o2700); // the user's own setgid memory dir: new directories inherit it
      await sleep(2100);
      const env = { ANTHROPIC_API_KEY: 'sk-ant-test', ANTHROPIC_BASE_URL: fake.url };
      const r = await cli(['run', '--memory-name', 'setid', 'plant a setuid binary'], { home, cwd: workspace(), env });
      assert.equal(r.code, 0, r.stderr);
      const made = fs
        .readdirSync(mem)
        .filter((n) => n !== 'm3')
        .sort();
      assert.deepEqual(made, ['d', 'm1', 'm2'], 'the tool ran in the memory dir');
      assert.deepEqual(setidEntries(mem), [], 'no set-id file in the memory dir');
      assert.equal(modeOf(mem), 0o2700);
      const events = auditEvents(home, r.runId!);
      assert.equal(events.find((e) => e.type === 'policy.deny')?.data.swept, 1, 'the inherited setgid of d, swept');
      assert.ok(events.findIndex((e) => e.type === 'policy.deny') < events.findIndex((e) => e.type === 'run.end'));
      assert.equal((await cli(['audit', 'verify', r.runId!], { home })).code, 0);
    } finally {
      await fake.close();
    }
  });

  test('the sweep clears what no syscall argument shows: setgid inherited by a new directory', async () => {
    const ws = workspace();
    const shared = path.join(ws, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o2775);
    await sleep(2100);
    const p = policyFile('version: 1\nfilesystem:\n  workspace: rw\n');
    const script = 'mkdir -p shared/sub/deeper && echo x > shared/f && ls -ld shared/sub';
    const r = await cli(['exec', '--policy', p, '--', 'sh', '-c', script], { home, cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^d.{5}s/m, 'control: inside the pod the new directory did inherit setgid');
    assert.equal(modeOf(path.join(shared, 'sub')) & SETID, 0, 'the inherited setgid was swept on the host');
    assert.equal(modeOf(path.join(shared, 'sub', 'deeper')) & SETID, 0);
    assert.equal(modeOf(shared), 0o2775, "the user's own setgid directory survives, though the pod wrote into it");
    const deny = auditEvents(home, r.runId!).find((e) => e.type === 'policy.deny' && e.data.swept !== undefined);
    assert.ok(deny, 'the sweep is recorded as policy.deny');
    assert.equal(deny.data.swept, 2);
  });

  // Why the sweep needs no route around the idmap: the kernel refuses to change (EOVERFLOW) an
  // inode whose owner or group the idmap does not map, and it refuses the pod any write to such an
  // inode too (EACCES), so every inode the pod could give a set-id bit is one the sweep can clear.
  test('a setgid directory with a group the idmap does not map is not writable by the pod at all', async () => {
    const ws = workspace();
    const shared = path.join(ws, 'staff');
    fs.mkdirSync(shared);
    fs.chownSync(shared, 0, 50);
    fs.chmodSync(shared, 0o2775);
    await sleep(2100);
    const p = policyFile('version: 1\nfilesystem:\n  workspace: rw\n');
    const script = 'mkdir staff/sub || exit 3; touch own && echo WROTE';
    const r = await cli(['exec', '--policy', p, '--', 'sh', '-c', script], { home, cwd: ws });
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /Permission denied/);
    assert.deepEqual(fs.readdirSync(shared), []);
    assert.equal(modeOf(shared), 0o2775);
  });
});

// ---- the sweep itself, through a tiny driver compiled against native/sweep.c ----

const DRIVER = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "sweep.h"
int main(int argc, char **argv) {
  if (argc != 5) return 2;
  struct timespec since = { strtoll(argv[2], NULL, 10), strtol(argv[3], NULL, 10) };
  struct sweep_result r = {0};
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  sweep_setid(argv[1], &since, strtol(argv[4], NULL, 10), &r);
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("visited=%ld swept=%ld unswept=%ld ms=%.2f\n", r.visited, r.swept, r.unswept,
         (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
  return 0;
}
`;

let driver: string | null = null;
function sweepDriver(): string {
  if (driver) return driver;
  const dir = tmpDir('sweep-driver');
  fs.writeFileSync(path.join(dir, 'driver.c'), DRIVER);
  const out = path.join(dir, 'driver');
  const cc = spawnSync(
    'cc',
    ['-O2', '-Wall', '-Werror', '-I', path.join(ROOT, 'native'), '-o', out, path.join(dir, 'driver.c'), path.join(ROOT, 'native', 'sweep.c')],
    { encoding: 'utf8' },
  );
  assert.equal(cc.status, 0, `cannot build the sweep driver: ${cc.stderr}`);
  return (driver = out);
}

/** Runs the driver (optionally inside a private mount namespace after `setup`). */
function sweep(root: string, since: bigint, max = 1_000_000, setup = '') {
  const args = [root, String(since / 1_000_000_000n), String(since % 1_000_000_000n), String(max)];
  const r = setup
    ? spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-ec', `${setup}\nexec "$0" "$@"`, sweepDriver(), ...args], { encoding: 'utf8' })
    : spawnSync(sweepDriver(), args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const m = r.stdout.match(/visited=(\d+) swept=(\d+) unswept=(\d+) ms=([\d.]+)/);
  assert.ok(m, r.stdout);
  return { visited: Number(m[1]), swept: Number(m[2]), unswept: Number(m[3]), ms: Number(m[4]) };
}

/** A "now" that every later inode change is at or after, coarse filesystem clocks included. */
async function since(): Promise<bigint> {
  const t = BigInt(Date.now()) * 1_000_000n;
  await sleep(30);
  return t;
}

describe('the end-of-pod sweep (native/sweep.c)', { skip: SKIP }, () => {
  test('clears new set-id bits, keeps old ones and pre-existing setgid dirs, never follows a symlink', async () => {
    const root = tmpDir('sweep');
    const outside = tmpDir('sweep-outside');
    const mk = (p: string, mode: number) => {
      fs.writeFileSync(p, 'x');
      fs.chmodSync(p, mode);
    };
    mk(path.join(root, 'old_suid'), 0o4755);
    fs.mkdirSync(path.join(root, 'old_sgid'));
    fs.chmodSync(path.join(root, 'old_sgid'), 0o2775);
    await sleep(1100);
    const t = await since();
    mk(path.join(root, 'new_suid'), 0o4755);
    mk(path.join(root, 'new_sgid'), 0o2711);
    fs.mkdirSync(path.join(root, 'old_sgid', 'inherited')); // ctime of old_sgid changes too
    mk(path.join(outside, 'target'), 0o4755);
    fs.mkdirSync(path.join(outside, 'dir'));
    mk(path.join(outside, 'dir', 'inner'), 0o4755);
    fs.symlinkSync(path.join(outside, 'target'), path.join(root, 'link'));
    fs.symlinkSync(path.join(outside, 'dir'), path.join(root, 'dirlink'));
    const r = sweep(root, t);
    assert.deepEqual({ swept: r.swept, unswept: r.unswept }, { swept: 3, unswept: 0 });
    assert.deepEqual(setidEntries(root), ['old_sgid 2775 uid=0', 'old_suid 4755 uid=0']);
    assert.equal(modeOf(path.join(root, 'new_suid')), 0o755);
    assert.equal(modeOf(path.join(outside, 'target')), 0o4755, 'a symlink target outside is untouched');
    assert.equal(modeOf(path.join(outside, 'dir', 'inner')), 0o4755);
  });

  test('a tree 3000 deep is walked to the bottom, branches below the fd window included', async () => {
    const root = tmpDir('sweep-deep');
    const t = await since();
    // The paths outgrow PATH_MAX, so build the chain with relative chdir.
    const mk = spawnSync('python3', [
      '-c',
      'import os, sys\nos.chdir(sys.argv[1])\nfor i in range(1, 3001):\n' +
        '  os.mkdir("d"); os.chdir("d")\n' +
        '  if i % 500 == 0: os.mkdir("e"); open("e/s", "w").close(); os.chmod("e/s", 0o4755)\n' +
        'open("s", "w").close(); os.chmod("s", 0o2755)',
      root,
    ]);
    assert.equal(mk.status, 0, String(mk.stderr));
    const r = sweep(root, t);
    assert.deepEqual({ swept: r.swept, unswept: r.unswept }, { swept: 7, unswept: 0 });
    assert.ok(r.visited >= 3000 + 12, `visited ${r.visited}`);
    assert.equal(sweep(root, t).swept, 0, 'a second pass finds nothing left');
    spawnSync('rm', ['-rf', root]);
  });

  test('does not cross into another mount, and reports a walk cut short by the work cap', async () => {
    const root = tmpDir('sweep-mnt');
    const t = await since();
    fs.mkdirSync(path.join(root, 'm'));
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(root, `f${i}`), 'x');
    const setup = `mount -t tmpfs x "${root}/m"; echo > "${root}/m/s"; chmod 4755 "${root}/m/s"`;
    const r = sweep(root, t, 1_000_000, setup);
    assert.equal(r.swept, 0, 'the setuid file on the other mount was not touched');
    const capped = sweep(root, t, 5);
    assert.ok(capped.unswept > 0, 'a walk stopped by the cap says so');
    assert.ok(capped.visited <= 5);
  });

  test('cost: a 10k-file tree', async () => {
    const root = tmpDir('sweep-10k');
    const mk = spawnSync('python3', [
      '-c',
      'import os, sys\nfor d in range(100):\n  os.mkdir(f"{sys.argv[1]}/d{d}")\n' + '  for f in range(100): open(f"{sys.argv[1]}/d{d}/f{f}", "w").close()',
      root,
    ]);
    assert.equal(mk.status, 0, String(mk.stderr));
    const t = await since();
    sweep(root, t); // warm the caches, as a pod that just worked on the tree leaves them
    const runs = [0, 1, 2, 3, 4].map(() => sweep(root, t).ms).sort((a, b) => a - b);
    console.log(`# sweep of 10,100 entries: median ${runs[2]} ms (min ${runs[0]}, max ${runs[4]})`);
    assert.ok(runs[2] < 1000);
  });
});
