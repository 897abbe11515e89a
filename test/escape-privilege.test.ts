// Escape attempts, part 2: privilege inside the pod (capabilities, mounts, namespaces, ptrace,
// /proc/sys, devices, setuid binaries, kernel interfaces), signals, other pods, the pod's host uid.
// Probes print SUCCEEDED:NAME or FAILED:NAME (PROBE_PRELUDE's `t`); attacks must FAIL in the
// pod, and the same probe run on the host (as root or as nobody) is the control that must SUCCEED.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { auditEvents, eventually, IS_ROOT, onHost, type Outcome, probePod, tmpDir, workspace } from './helpers.js';

const HAS_PY = fs.existsSync('/usr/bin/python3');
const HAS_STRACE = fs.existsSync('/usr/bin/strace');
const rand = () => crypto.randomBytes(5).toString('hex');
const all = (names: string[], o: Outcome) => Object.fromEntries(names.map((n) => [n, o]));
const succeeded = (stdout: string) => (stdout.match(/^SUCCEEDED:(\S+)$/gm) ?? []).map((l) => l.slice(10)).sort();

let home: string;
before(() => {
  home = tmpDir('home');
});

/** Host view of the processes inside a pod (a nested pid namespace) whose command line contains
 * mark, with their four uids (real, effective, saved, fs). */
function podProcs(mark: string): { pid: number; uids: number[] }[] {
  const found: { pid: number; uids: number[] }[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (!fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(mark)) continue;
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      if ((status.match(/^NSpid:\s+(.*)$/m)?.[1].split(/\s+/).length ?? 1) < 2) continue; // clawpod, podinit
      found.push({
        pid: Number(pid),
        uids: status
          .match(/^Uid:\s+(.*)$/m)![1]
          .split(/\s+/)
          .map(Number),
      });
    } catch {
      /* exited */
    }
  }
  return found;
}

describe('privilege inside the pod', () => {
  test('no capabilities: CapInh/Prm/Eff/Bnd/Amb are zero for the command and for pid 1', async () => {
    const pod = await probePod(home, 'grep -H "^Cap" /proc/self/status /proc/1/status');
    const caps = pod.stdout.match(/^\/proc\/\w+\/status:Cap\w+:\s+[0-9a-f]+$/gm) ?? [];
    assert.equal(caps.length, 10, pod.stdout);
    for (const line of caps) assert.match(line, /:\s+0{16}$/, `a capability is left: ${line}`);
    // Control: the parser sees a non-zero set where there is one (clawpod's host side is root).
    if (IS_ROOT) assert.doesNotMatch(fs.readFileSync('/proc/self/status', 'utf8'), /^CapEff:\s+0{16}$/m);
  });

  test('mount, unshare (-U, -r, -m, -n), chroot and setns all fail', async () => {
    const script = [
      `t mkdir_ctl 'mkdir -p /tmp/m'`,
      `t mount_tmpfs 'mount -t tmpfs x /tmp/m'`,
      `t mount_bind 'mount --bind /tmp /workspace'`,
      `t mount_remount 'mount -o remount,rw /usr'`,
      `t umount 'umount /workspace'`,
      `t unshare_user 'unshare -U true'`,
      `t unshare_root 'unshare -r true'`,
      `t unshare_mount 'unshare -m true'`,
      `t unshare_net 'unshare -n true'`,
      `t unshare_pid 'unshare -pf true'`,
      `t chroot 'chroot / true'`,
      `t nsenter 'nsenter -t 1 -U true'`,
    ].join('\n');
    const pod = await probePod(home, script);
    const attacks = Object.keys(pod.out).filter((n) => n !== 'mkdir_ctl');
    assert.equal(attacks.length, 11);
    assert.deepEqual(pod.out, { mkdir_ctl: 'SUCCEEDED', ...all(attacks, 'FAILED') }, pod.stdout + pod.stderr);
    // Control: on the host even an unprivileged user can make a user namespace and mount in it.
    const host = await onHost(`t unshare_user 'unshare -U true'\nt unshare_root 'unshare -r true'\nt mount_tmpfs 'unshare -rm mount -t tmpfs x /tmp'`, {
      asNobody: true,
    });
    assert.deepEqual(succeeded(host.stdout), ['mount_tmpfs', 'unshare_root', 'unshare_user'], host.stdout + host.stderr);
  });

  test('ptrace: PTRACE_ATTACH and PTRACE_TRACEME fail (python ctypes, strace); /proc/1/mem cannot be read with cat', async (t) => {
    if (!HAS_PY) return t.skip('needs /usr/bin/python3');
    const ws = workspace({
      'ptrace.py': [
        'import ctypes, subprocess, sys',
        'libc = ctypes.CDLL(None, use_errno=True)',
        'child = subprocess.Popen(["sleep", "5"])',
        'r = libc.ptrace(16, child.pid, 0, 0)  # PTRACE_ATTACH a sibling of the same uid',
        'child.kill()',
        'sys.exit(0 if r == 0 else 1)',
      ].join('\n'),
    });
    const script = [
      `t ptrace_attach 'python3 ptrace.py'`,
      HAS_STRACE ? `t strace_child 'strace -o /dev/null true'` : '',
      HAS_STRACE ? `t strace_attach 'sleep 3 & p=$!; timeout 1 strace -o /dev/null -p $p; test $? = 124'` : '',
      // Fails with EIO only because offset 0 is unmapped: /proc/PID/mem of a process of the same pod
      // (same uid) opens and reads at a mapped address. Inside one pod only, so not an escape.
      `t cat_proc1_mem 'cat /proc/1/mem'`,
    ].join('\n');
    const pod = await probePod(home, script, { ws });
    const names = ['ptrace_attach', ...(HAS_STRACE ? ['strace_child', 'strace_attach'] : []), 'cat_proc1_mem'];
    assert.deepEqual(pod.out, all(names, 'FAILED'), pod.stdout + pod.stderr);
    // Control: an unprivileged host user may trace its own processes.
    const host = await onHost(script.replace(/^t cat_proc1_mem.*$/m, ''), { cwd: ws, asNobody: true });
    assert.deepEqual(succeeded(host.stdout), names.filter((n) => n !== 'cat_proc1_mem').sort(), host.stdout + host.stderr);
  });

  test('/proc/sys and /proc/sysrq-trigger cannot be written', async () => {
    const hostName = os.hostname();
    const corePattern = fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
    // Writes that would change nothing if they got through (the current value back, 'h' = help).
    const script = [
      `t write_ctl 'echo x > /tmp/x'`,
      `t drop_caches 'echo 1 > /proc/sys/vm/drop_caches'`,
      `t hostname 'echo pod > /proc/sys/kernel/hostname'`,
      `t core_pattern 'cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern'`,
      `t modprobe 'cat /proc/sys/kernel/modprobe > /proc/sys/kernel/modprobe'`,
      `t sysrq_writable 'test -w /proc/sysrq-trigger'`,
      `t sysrq 'echo h > /proc/sysrq-trigger'`,
      `t sys_writable 'test -w /proc/sys/vm/drop_caches'`,
    ].join('\n');
    const pod = await probePod(home, script);
    const attacks = ['drop_caches', 'hostname', 'core_pattern', 'modprobe', 'sysrq_writable', 'sysrq', 'sys_writable'];
    assert.deepEqual(pod.out, { write_ctl: 'SUCCEEDED', ...all(attacks, 'FAILED') }, pod.stdout + pod.stderr);
    assert.equal(os.hostname(), hostName);
    assert.equal(fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8'), corePattern);
    if (IS_ROOT) {
      const host = await onHost(`t sysrq_writable 'test -w /proc/sysrq-trigger'\nt sys_writable 'test -w /proc/sys/vm/drop_caches'`);
      const want = fs.existsSync('/proc/sysrq-trigger') ? ['sys_writable', 'sysrq_writable'] : ['sys_writable']; // no sysrq in some kernels
      assert.deepEqual(succeeded(host.stdout), want, 'control: writable for host root');
    }
  });

  test('/dev holds only the minimal set; no disks, memory, kmsg or kvm; mknod of a device fails', async () => {
    const MINIMAL = ['console', 'core', 'fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero'];
    const devs = ['sda', 'vda', 'nvme0n1', 'mem', 'kmem', 'port', 'kmsg', 'kvm', 'loop0', 'loop-control', 'fuse', 'net/tun', 'dri', 'hwrng', 'cpu'];
    const script = [
      'ls -A /dev | sed "s/^/DEV:/"',
      ...devs.map((d) => `t dev_${d.replace('/', '_')} 'test -e /dev/${d}'`),
      `t mknod_block 'mknod /tmp/blk b 254 0'`,
      `t mknod_mem 'mknod /tmp/mem c 1 1'`,
      `t mknod_fifo_ctl 'mknod /tmp/fifo p'`,
      `t dev_null_ctl 'echo > /dev/null'`,
    ].join('\n');
    const pod = await probePod(home, script);
    const listed = (pod.stdout.match(/^DEV:(.*)$/gm) ?? []).map((l) => l.slice(4));
    assert.ok(listed.includes('null'), pod.stdout);
    assert.deepEqual(
      listed.filter((d) => !MINIMAL.includes(d)),
      [],
      'unexpected entries in /dev',
    );
    assert.deepEqual(
      pod.out,
      {
        ...all([...devs.map((d) => `dev_${d.replace('/', '_')}`), 'mknod_block', 'mknod_mem'], 'FAILED'),
        mknod_fifo_ctl: 'SUCCEEDED',
        dev_null_ctl: 'SUCCEEDED',
      },
      pod.stdout + pod.stderr,
    );
    // Control: some of these devices are there on the host.
    assert.ok(
      devs.some((d) => fs.existsSync(`/dev/${d}`)),
      'none of the probed devices exists on the host either',
    );
  });

  test('setuid binaries gain nothing: no_new_privs is set, su runs with euid 1000, su -c id fails', async () => {
    // Samples the uids of a running `su` (it waits on its stdin pipe): euid 0 means it gained root.
    const script = [
      `t no_new_privs_off 'grep -q "^NoNewPrivs:[[:space:]]*0" /proc/self/status'`,
      `t setuid_files_ctl 'find /usr/bin -perm -4000 -type f | grep -q .'`,
      `t su_c_id 'su -c id root | grep -q "uid=0"'`,
      `t mount_as_setuid 'mkdir -p /tmp/m && /usr/bin/mount -t tmpfs x /tmp/m'`,
      'sleep 2 | su root -c true >/dev/null 2>&1 & p=$!',
      'for i in $(seq 1 80); do s=$(cat /proc/$p/status 2>/dev/null) || break',
      '  case "$s" in *Name:[[:space:]]su*) echo "$s" | awk \'/^Uid:/ {print "SU_UIDS:" $2 "," $3}\'; break;; esac; sleep 0.02; done',
      'kill %1 2>/dev/null; wait',
    ].join('\n');
    const pod = await probePod(home, script);
    assert.deepEqual(
      pod.out,
      { no_new_privs_off: 'FAILED', setuid_files_ctl: 'SUCCEEDED', su_c_id: 'FAILED', mount_as_setuid: 'FAILED' },
      pod.stdout + pod.stderr,
    );
    assert.match(pod.stdout, /^SU_UIDS:1000,1000$/m, 'su was not caught running, or ran with another euid');
    // Control: on the host, su started by nobody runs with euid 0 (the setuid bit works there).
    const host = await onHost(script, { asNobody: true });
    assert.match(host.stdout, /^SU_UIDS:65534,0$/m, host.stdout + host.stderr);
    assert.match(host.stdout, /^SUCCEEDED:no_new_privs_off$/m);
  });

  test('keyctl, bpf, io_uring_setup, perf_event_open, userfaultfd return EPERM', async (t) => {
    if (!HAS_PY) return t.skip('needs /usr/bin/python3');
    if (os.arch() !== 'x64') return t.skip('syscall numbers in the probe are x86_64');
    // A call "succeeds" (reaches the kernel) unless it fails with EPERM.
    const ws = workspace({
      'sys.py': [
        'import ctypes, platform',
        'assert platform.machine() == "x86_64", "syscall numbers are x86_64"',
        'libc = ctypes.CDLL(None, use_errno=True)',
        'libc.syscall.restype = ctypes.c_long',
        'buf = ctypes.create_string_buffer(256)',
        'calls = {"keyctl": (250, 0, ctypes.c_long(-3), 0), "bpf": (321, 0, buf, 128), "io_uring_setup": (425, 1, buf),',
        '         "perf_event_open": (298, buf, 0, -1, -1, 0), "userfaultfd": (323, 0)}',
        'for name, args in calls.items():',
        '    ctypes.set_errno(0)',
        '    r = libc.syscall(*args)',
        '    print(("FAILED:" if r == -1 and ctypes.get_errno() == 1 else "SUCCEEDED:") + name)',
      ].join('\n'),
    });
    const names = ['keyctl', 'bpf', 'io_uring_setup', 'perf_event_open', 'userfaultfd'];
    const pod = await probePod(home, 'python3 sys.py', { ws });
    assert.deepEqual(pod.out, all(names, 'FAILED'), pod.stdout + pod.stderr);
    if (IS_ROOT) {
      const host = await onHost('python3 sys.py', { cwd: ws });
      assert.deepEqual(succeeded(host.stdout), [...names].sort(), `control: the calls reach the kernel on the host\n${host.stdout}${host.stderr}`);
    }
  });
});

describe('signals, other pods and the pod uid', () => {
  test('kill -9 1 and kill -9 -1 in the pod hit only the pod; clawpod reports the exit code', async () => {
    const script = `kill -9 1; kill -9 -1; kill -9 ${process.pid} 2>/dev/null || echo NO_SUCH_PID; echo SURVIVED; exit 7`;
    const pod = await probePod(home, script);
    assert.equal(pod.code, 7, pod.stderr);
    assert.match(pod.stdout, /^NO_SUCH_PID$/m);
    assert.match(pod.stdout, /^SURVIVED$/m);
    const end = auditEvents(home, pod.runId!).find((e) => e.type === 'run.end');
    assert.equal(end?.data.exitCode, 7);
    process.kill(process.pid, 0);
    process.kill(1, 0);
  });

  test('two pods at once: B cannot see or signal A, nor read its /tmp; they run as different uids', async () => {
    const mark = `MARKER_A_${rand()}`;
    const a = probePod(home, `echo private > /tmp/a-secret; sleep 4; echo ${mark}`);
    assert.ok(await eventually(() => podProcs(mark).length > 0, 5000), 'pod A did not start');
    const aPids = podProcs(mark).map((p) => p.pid);
    for (const pid of aPids) process.kill(pid, 0); // control: the host can see and signal them
    const script = [
      `t see_a 'cat /proc/[0-9]*/cmdline | tr "\\0" " " | grep -q ${mark.slice(0, -1)}[${mark.slice(-1)}]'`,
      `t a_tmp 'test -e /tmp/a-secret'`,
      ...aPids.map((p, i) => `t kill_a_${i} 'kill -0 ${p}'`),
      `t other_uid 'cat /proc/[0-9]*/status 2>/dev/null | awk "/^Uid:/ && \\$2 != $(id -u) {f=1} END {exit !f}"'`,
      'exec /usr/bin/kill -9 -1',
    ].join('\n');
    const b = await probePod(home, script);
    assert.deepEqual(b.out, all(['see_a', 'a_tmp', 'other_uid', ...aPids.map((_, i) => `kill_a_${i}`)], 'FAILED'), b.stdout + b.stderr);
    const ra = await a;
    assert.equal(ra.code, 0, ra.stderr);
    assert.match(ra.stdout, new RegExp(`^${mark}$`, 'm'), 'pod A was disturbed');
    assert.ok(ra.uid !== null && b.uid !== null && ra.uid !== b.uid, `pods share uid ${ra.uid}`);
  });

  test('the pod is uid 1000 inside and a dedicated unprivileged uid (>= 1800000000) on the host', {
    skip: !IS_ROOT && 'dedicated uids need root',
  }, async () => {
    const mark = `uidprobe-${rand()}`;
    const seen: { pid: number; uids: number[] }[] = [];
    const run = probePod(home, `echo "ID:$(id -u):$(id -g)"; sleep 1.5 # ${mark}`);
    await eventually(() => {
      seen.push(...podProcs(mark));
      return seen.length > 0;
    }, 5000);
    const pod = await run;
    assert.match(pod.stdout, /^ID:1000:1000$/m);
    assert.ok(pod.uid !== null && pod.uid >= 1_800_000_000, `pod uid ${pod.uid}`);
    assert.ok(seen.length > 0, 'no pod process seen from the host');
    for (const p of seen) assert.deepEqual(p.uids, [pod.uid, pod.uid, pod.uid, pod.uid], `host pid ${p.pid} runs as ${p.uids}`);
    assert.ok(!fs.existsSync(path.join('/run/clawpod/uids', String(pod.uid))), 'uid lock released');
  });
});
