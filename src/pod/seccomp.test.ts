import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_ARCH, DENIED_SYSCALLS, SECCOMP_RET, buildSeccompProgram, hostArch, runSeccomp, type Arch } from './seccomp.js';
import { knownSyscalls, syscallNumber } from './syscalls.js';

const ARCHES: readonly Arch[] = ['x86_64', 'aarch64'];
const ALLOW = SECCOMP_RET.ALLOW;
const KILL = SECCOMP_RET.KILL_PROCESS;
const EPERM = SECCOMP_RET.ERRNO | 1;
const ENOSYS = SECCOMP_RET.ERRNO | 38;

// The policy, written out independently of DENIED_SYSCALLS so that dropping a name from the
// implementation makes a test fail.
const MUST_DENY = [
  'ptrace',
  'mount',
  'umount2',
  'unshare',
  'setns',
  'pivot_root',
  'chroot',
  'bpf',
  'keyctl',
  'add_key',
  'request_key',
  'kexec_load',
  'kexec_file_load',
  'init_module',
  'finit_module',
  'delete_module',
  'swapon',
  'swapoff',
  'reboot',
  'acct',
  'quotactl',
  'open_by_handle_at',
  'name_to_handle_at',
  'perf_event_open',
  'userfaultfd',
  'process_vm_readv',
  'process_vm_writev',
  'move_mount',
  'open_tree',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'mount_setattr',
  'syslog',
  'iopl',
  'ioperm',
  'settimeofday',
  'clock_settime',
  'clock_adjtime',
  'adjtimex',
  'lookup_dcookie',
  'vhangup',
  'kcmp',
  'pidfd_getfd',
  'uselib',
  'nfsservctl',
  '_sysctl',
  'create_module',
  'get_kernel_syms',
  'query_module',
  'afs_syscall',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  'fanotify_init',
];
const X86_ONLY = ['iopl', 'ioperm', 'uselib', '_sysctl', 'create_module', 'get_kernel_syms', 'query_module', 'afs_syscall'];
const MUST_ALLOW = ['read', 'write', 'openat', 'execve', 'getpid', 'landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self'];

function nrOf(arch: Arch, name: string): number {
  const nr = syscallNumber(arch, name);
  assert.ok(nr !== undefined, `${name} has no number on ${arch}`);
  return nr;
}

function verdict(arch: Arch, name: string, args: bigint[] = []): number {
  const data = { nr: nrOf(arch, name), arch: AUDIT_ARCH[arch], args };
  return runSeccomp(buildSeccompProgram(arch), data);
}

test('first instruction loads seccomp_data.arch (BPF_LD|BPF_W|BPF_ABS, k=4)', () => {
  const program = buildSeccompProgram('x86_64');
  assert.deepEqual([...program.subarray(0, 8)], [0x20, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00]);
  // Then JEQ #AUDIT_ARCH_X86_64, jt=1, jf=0 (k little-endian).
  assert.deepEqual([...program.subarray(8, 16)], [0x15, 0x00, 0x01, 0x00, 0x3e, 0x00, 0x00, 0xc0]);
  assert.deepEqual([...buildSeccompProgram('aarch64').subarray(12, 16)], [0xb7, 0x00, 0x00, 0xc0]);
});

test('programs are well-formed: size, final return, every jump inside the program', () => {
  for (const arch of ARCHES) {
    const program = buildSeccompProgram(arch);
    assert.equal(program.length % 8, 0);
    const count = program.length / 8;
    assert.ok(count > 100 && count < 4096, `${arch}: ${count} instructions`);
    assert.equal(program.readUInt16LE(program.length - 8), 0x06, `${arch}: last is not RET K`);
    for (let pc = 0; pc < count; pc++) {
      const code = program.readUInt16LE(pc * 8);
      if ((code & 0x07) !== 0x05) continue;
      const reach = code === 0x05 ? program.readUInt32LE(pc * 8 + 4) : Math.max(program[pc * 8 + 2], program[pc * 8 + 3]);
      assert.ok(pc + 1 + reach < count, `${arch}: jump at ${pc} leaves the program`);
    }
  }
});

test('the default architecture is the host one', () => {
  assert.deepEqual(buildSeccompProgram(), buildSeccompProgram(hostArch()));
  assert.equal(hostArch('x64'), 'x86_64');
  assert.equal(hostArch('arm64'), 'aarch64');
  assert.throws(() => hostArch('ia32'), /ia32/);
});

test('every policy syscall is known, and DENIED_SYSCALLS covers the policy', () => {
  for (const name of MUST_DENY) {
    assert.ok(knownSyscalls().includes(name), `${name} missing from the syscall table`);
    assert.ok(DENIED_SYSCALLS.includes(name), `${name} missing from DENIED_SYSCALLS`);
  }
  for (const name of X86_ONLY) assert.equal(syscallNumber('aarch64', name), undefined, name);
});

for (const arch of ARCHES) {
  test(`${arch}: every denied syscall returns EPERM`, () => {
    const present = MUST_DENY.filter((name) => syscallNumber(arch, name) !== undefined);
    assert.equal(present.length, MUST_DENY.length - (arch === 'aarch64' ? X86_ONLY.length : 0));
    for (const name of present) assert.equal(verdict(arch, name), EPERM, `${arch} ${name}`);
    assert.equal(verdict(arch, 'open_tree_attr'), EPERM);
    assert.equal(verdict(arch, 'quotactl_fd'), EPERM);
  });

  test(`${arch}: ordinary syscalls are allowed`, () => {
    for (const name of MUST_ALLOW) assert.equal(verdict(arch, name), ALLOW, `${arch} ${name}`);
  });

  test(`${arch}: clone is refused only with a namespace flag; clone3 gets ENOSYS`, () => {
    const SIGCHLD = 17n;
    const threadFlags = 0x3d0f00n; // what glibc's pthread_create passes
    assert.equal(verdict(arch, 'clone', [SIGCHLD]), ALLOW);
    assert.equal(verdict(arch, 'clone', [threadFlags]), ALLOW);
    assert.equal(verdict(arch, 'clone', [0x10000000n | SIGCHLD]), EPERM);
    for (const flag of [0x80n, 0x20000n, 0x2000000n, 0x4000000n, 0x8000000n, 0x10000000n, 0x20000000n, 0x40000000n]) {
      assert.equal(verdict(arch, 'clone', [flag]), EPERM, `${arch} clone 0x${flag.toString(16)}`);
    }
    assert.equal(verdict(arch, 'clone', [0xffffffff_00000000n | SIGCHLD]), ALLOW);
    assert.equal(verdict(arch, 'clone3'), ENOSYS);
  });

  test(`${arch}: the host-wide AIO pool and spare kernel surface are refused`, () => {
    assert.equal(verdict(arch, 'io_setup', [128n, 0n]), ENOSYS);
    for (const name of ['memfd_secret', 'move_pages', 'migrate_pages', ...(arch === 'x86_64' ? ['modify_ldt'] : [])]) {
      assert.equal(verdict(arch, name), EPERM, name);
    }
  });

  test(`${arch}: ioctl TIOCSTI/TIOCLINUX refused, TCGETS allowed`, () => {
    assert.equal(verdict(arch, 'ioctl', [0n, 0x5412n]), EPERM);
    for (const req of [0x5423n, 0x540cn, 0x540an, 0x541dn, 0x540en, 0x5437n])
      assert.equal(verdict(arch, 'ioctl', [1n, req]), EPERM, `ioctl 0x${req.toString(16)}`);
    assert.equal(verdict(arch, 'ioctl', [1n, 0x5413n]), ALLOW, 'TIOCGWINSZ stays');
    assert.equal(verdict(arch, 'ioctl', [0n, 0x541cn]), EPERM);
    // The kernel truncates the request to 32 bits, so high bits must not hide TIOCSTI.
    assert.equal(verdict(arch, 'ioctl', [0n, 0xdead0000_00005412n]), EPERM);
    assert.equal(verdict(arch, 'ioctl', [0x5412n, 0x5401n]), ALLOW);
    assert.equal(verdict(arch, 'ioctl', [0n, 0x541bn]), ALLOW);
  });

  test(`${arch}: socket refuses packet, vsock and netlink but route, keeps unix and inet`, () => {
    for (const domain of [1n, 2n, 10n]) assert.equal(verdict(arch, 'socket', [domain, 1n, 0n]), ALLOW);
    for (const domain of [17n, 40n]) {
      for (const proto of [0n, 3n]) assert.equal(verdict(arch, 'socket', [domain, 3n, proto]), EPERM, `${domain}/${proto}`);
    }
    assert.equal(verdict(arch, 'socket', [16n, 3n, 0n]), ALLOW, 'NETLINK_ROUTE');
    assert.equal(verdict(arch, 'socket', [16n, 2n, 0n]), ALLOW, 'NETLINK_ROUTE, SOCK_DGRAM');
    // sock_diag, audit, uevent, netfilter, xfrm, generic, and anything else.
    for (const proto of [1n, 4n, 6n, 9n, 12n, 15n, 16n, 31n, 0xffffffffn]) {
      assert.equal(verdict(arch, 'socket', [16n, 3n, proto]), EPERM, `netlink protocol ${proto}`);
    }
    // High bits are dropped by the kernel (int family, int protocol): they hide nothing either way.
    assert.equal(verdict(arch, 'socket', [16n, 3n, 0x1_00000009n]), EPERM);
    assert.equal(verdict(arch, 'socket', [0x1_00000011n, 3n, 0n]), EPERM);
    assert.equal(verdict(arch, 'socket', [0x1_00000010n, 3n, 0x1_00000000n]), ALLOW);
  });

  test(`${arch}: socketpair refuses netlink, packet and vsock, keeps unix`, () => {
    assert.equal(verdict(arch, 'socketpair', [1n, 1n, 0n, 0n]), ALLOW);
    for (const domain of [16n, 17n, 40n]) {
      for (const proto of [0n, 9n]) assert.equal(verdict(arch, 'socketpair', [domain, 3n, proto, 0n]), EPERM);
    }
  });

  test(`${arch}: chown family only to the pod's own ids or -1`, () => {
    const KEEP = 0xffffffffn;
    const at = (name: string): [number, number] => (name === 'fchownat' ? [2, 3] : [1, 2]);
    for (const name of ['chown', 'fchown', 'lchown', 'fchownat']) {
      if (syscallNumber(arch, name) === undefined) continue; // chown, lchown: x86_64 only
      const [u, g] = at(name);
      const call = (uid: bigint, gid: bigint) => {
        const args = [3n, 0n, 0n, 0n, 0n, 0n];
        args[u] = uid;
        args[g] = gid;
        return verdict(arch, name, args);
      };
      for (const [uid, gid] of [
        [1000n, 1000n],
        [KEEP, KEEP],
        [1000n, KEEP],
        [KEEP, 1000n],
      ]) {
        assert.equal(call(uid, gid), ALLOW, `${name}(${uid}, ${gid})`);
      }
      for (const [uid, gid] of [
        [0n, 0n],
        [0n, KEEP],
        [KEEP, 0n],
        [1000n, 0n],
        [4242n, 1000n],
        [65534n, 65534n],
        [1001n, 1000n],
      ]) {
        assert.equal(call(uid, gid), EPERM, `${name}(${uid}, ${gid})`);
      }
      // uid_t is 32 bits: the kernel sees only the low word, and so does the filter.
      assert.equal(call(0xffffffff_00000000n, KEEP), EPERM, 'high bits over uid 0');
      assert.equal(call(0x1_000003e8n, KEEP), ALLOW, 'uid 1000 with high bits is uid 1000');
      assert.equal(call(0xffffffff_ffffffffn, 0xffffffff_ffffffffn), ALLOW, '-1 as a 64-bit value');
    }
  });

  test(`${arch}: personality allows only PER_LINUX and the query`, () => {
    assert.equal(verdict(arch, 'personality', [0n]), ALLOW);
    assert.equal(verdict(arch, 'personality', [0xffffffffn]), ALLOW);
    assert.equal(verdict(arch, 'personality', [0x0040000n]), EPERM); // ADDR_NO_RANDOMIZE
    assert.equal(verdict(arch, 'personality', [0x8n]), EPERM); // PER_LINUX32
  });
}

// The mode argument's position and the flags that make open use it, per syscall and arch.
const S_ISUID = 0o4000n;
const S_ISGID = 0o2000n;
const O_CREAT = 0o100n;
const O_TMPFILE_X86 = 0o20200000n; // __O_TMPFILE | O_DIRECTORY, as libc passes it
const O_TMPFILE_ARM = 0o20040000n; // O_DIRECTORY is 040000 on the generic table
const O_DIRECTORY = { x86_64: 0o200000n, aarch64: 0o40000n } as const;
const MODE_ARG: ReadonlyArray<[string, number]> = [
  ['chmod', 1],
  ['fchmod', 1],
  ['fchmodat', 2],
  ['fchmodat2', 2],
  ['creat', 1],
  ['mkdir', 1],
  ['mkdirat', 2],
  ['mknod', 1],
  ['mknodat', 2],
];
const withArg = (i: number, v: bigint, fill = 0n) => Array.from({ length: 6 }, (_, j) => (j === i ? v : fill));

for (const arch of ARCHES) {
  test(`${arch}: a set-id bit in any mode argument is refused, other modes pass`, () => {
    const present = MODE_ARG.filter(([name]) => syscallNumber(arch, name) !== undefined);
    assert.equal(present.length, arch === 'x86_64' ? 9 : 5, present.map(([n]) => n).join());
    for (const [name, arg] of present) {
      const at = (mode: bigint) => verdict(arch, name, withArg(arg, mode));
      assert.equal(at(0o4755n), EPERM, `${arch} ${name} 04755`);
      assert.equal(at(0o2755n), EPERM, `${arch} ${name} 02755`);
      assert.equal(at(0o6000n), EPERM, `${arch} ${name} 06000`);
      assert.equal(at(0o100000n | S_ISUID | 0o755n), EPERM, `${arch} ${name} S_IFREG|04755`);
      assert.equal(at(0xffffffff_00000000n | S_ISGID), EPERM, `${arch} ${name} high bits set too`);
      assert.equal(at(0o755n), ALLOW, `${arch} ${name} 0755`);
      assert.equal(at(0o1777n), ALLOW, `${arch} ${name} sticky is not set-id`);
      assert.equal(at(0xffffffff_00000000n | 0o777n), ALLOW, `${arch} ${name}: the kernel drops high bits`);
      // The same bits in another argument (a path pointer, a dirfd, a device) do not count.
      const other = arg === 1 ? 2 : 1;
      assert.equal(verdict(arch, name, withArg(other, S_ISUID | S_ISGID)), ALLOW, `${arch} ${name} arg ${other}`);
    }
  });

  test(`${arch}: open/openat refuse a set-id mode only when they create a file`, () => {
    const calls: Array<[string, number]> =
      arch === 'x86_64'
        ? [
            ['open', 1],
            ['openat', 2],
          ]
        : [['openat', 2]];
    const tmpfile = arch === 'x86_64' ? O_TMPFILE_X86 : O_TMPFILE_ARM;
    for (const [name, flagsArg] of calls) {
      const run = (flags: bigint, mode: bigint) => {
        const args = [0n, 0n, 0n, 0n, 0n, 0n];
        args[flagsArg] = flags;
        args[flagsArg + 1] = mode;
        return verdict(arch, name, args);
      };
      assert.equal(run(O_CREAT | 1n, 0o4755n), EPERM, `${name} O_CREAT 04755`);
      assert.equal(run(O_CREAT | 0o200n | 1n, 0o2644n), EPERM, `${name} O_CREAT|O_EXCL 02644`);
      assert.equal(run(tmpfile | 2n, 0o6755n), EPERM, `${name} O_TMPFILE 06755`);
      assert.equal(run(0xffffffff_00000000n | O_CREAT, 0o4755n), EPERM, `${name} high flag bits`);
      assert.equal(run(O_CREAT | 1n, 0o755n), ALLOW, `${name} O_CREAT 0755`);
      assert.equal(run(tmpfile | 2n, 0o600n), ALLOW, `${name} O_TMPFILE 0600`);
      // Without O_CREAT/O_TMPFILE the mode register is garbage the kernel ignores: opendir,
      // plain reads and writes must pass whatever it holds.
      assert.equal(run(O_DIRECTORY[arch], 0o7777n), ALLOW, `${name} O_DIRECTORY with garbage mode`);
      assert.equal(run(0n, 0xffffffff_ffffffffn), ALLOW, `${name} O_RDONLY with garbage mode`);
      assert.equal(run(0o2n | 0o2000n | 0o4000n, 0o6777n), ALLOW, `${name} O_RDWR|O_APPEND|O_NONBLOCK`);
      // The same bits in the wrong argument do not count.
      const shifted = [0n, 0n, 0n, 0n, 0n, 0n];
      shifted[flagsArg + 1] = O_CREAT;
      shifted[flagsArg + 2] = S_ISUID;
      assert.equal(verdict(arch, name, shifted), ALLOW, `${name} shifted arguments`);
    }
    assert.equal(verdict(arch, 'openat2', [0n, 0n, 0n, 24n]), ENOSYS);
  });
}

test('a two-check rule: the first check failing skips straight to the otherwise return', () => {
  // openat on x86_64: JEQ nr, LD flags, JSET creates (miss -> otherwise), LD mode, JSET setid,
  // RET EPERM, RET ALLOW. Reading the block back pins the jump offsets, not just the verdicts.
  const program = buildSeccompProgram('x86_64');
  const words = Array.from({ length: program.length / 8 }, (_, pc) => ({
    code: program.readUInt16LE(pc * 8),
    jt: program[pc * 8 + 2],
    jf: program[pc * 8 + 3],
    k: program.readUInt32LE(pc * 8 + 4),
  }));
  const at = words.findIndex((w) => w.code === 0x15 && w.k === 257);
  assert.ok(at > 0);
  assert.deepEqual(words.slice(at, at + 7), [
    { code: 0x15, jt: 0, jf: 6, k: 257 },
    { code: 0x20, jt: 0, jf: 0, k: 16 + 8 * 2 },
    { code: 0x45, jt: 0, jf: 3, k: 0o20000100 },
    { code: 0x20, jt: 0, jf: 0, k: 16 + 8 * 3 },
    { code: 0x45, jt: 0, jf: 1, k: 0o6000 },
    { code: 0x06, jt: 0, jf: 0, k: EPERM },
    { code: 0x06, jt: 0, jf: 0, k: ALLOW },
  ]);
});

test('syscall numbers are per architecture', () => {
  // 101 is ptrace on x86_64 but nanosleep on aarch64; 117 is ptrace on aarch64 but setresuid
  // on x86_64.
  const run = (arch: Arch, nr: number) => runSeccomp(buildSeccompProgram(arch), { nr, arch: AUDIT_ARCH[arch] });
  assert.equal(run('x86_64', 101), EPERM);
  assert.equal(run('aarch64', 101), ALLOW);
  assert.equal(run('aarch64', 117), EPERM);
  assert.equal(run('x86_64', 117), ALLOW); // setresuid
});

test('x32 syscalls and foreign architectures are killed', () => {
  const x86 = buildSeccompProgram('x86_64');
  for (const nr of [0x40000000, 0x40000000 | 101, 0x40000000 | 0x200, 0xffffffff]) {
    assert.equal(runSeccomp(x86, { nr, arch: AUDIT_ARCH.x86_64 }), KILL, `nr 0x${nr.toString(16)}`);
  }
  assert.equal(runSeccomp(x86, { nr: 0, arch: 0x40000003 }), KILL); // i386 compat
  assert.equal(runSeccomp(x86, { nr: 0, arch: AUDIT_ARCH.aarch64 }), KILL);
  const arm = buildSeccompProgram('aarch64');
  assert.equal(runSeccomp(arm, { nr: 63, arch: 0x40000028 }), KILL); // 32-bit ARM compat
  assert.equal(runSeccomp(arm, { nr: 63, arch: AUDIT_ARCH.x86_64 }), KILL);
  assert.equal(runSeccomp(arm, { nr: 63, arch: AUDIT_ARCH.aarch64 }), ALLOW);
});

test('runSeccomp executes hand-written programs and refuses broken ones', () => {
  const insn = (code: number, jt: number, jf: number, k: number) => {
    const b = Buffer.alloc(8);
    b.writeUInt16LE(code, 0);
    b[2] = jt;
    b[3] = jf;
    b.writeUInt32LE(k, 4);
    return b;
  };
  // A = nr; if (A == 5) return 7; else return 9;
  const program = Buffer.concat([insn(0x20, 0, 0, 0), insn(0x15, 0, 1, 5), insn(0x06, 0, 0, 7), insn(0x06, 0, 0, 9)]);
  assert.equal(runSeccomp(program, { nr: 5, arch: 0 }), 7);
  assert.equal(runSeccomp(program, { nr: 6, arch: 0 }), 9);
  // Arg 1's high word sits at offset 28: read it back through RET A.
  const high = Buffer.concat([insn(0x20, 0, 0, 28), insn(0x16, 0, 0, 0)]);
  assert.equal(runSeccomp(high, { nr: 0, arch: 0, args: [0n, 0x12345678_00000000n] }), 0x12345678);
  assert.throws(() => runSeccomp(program.subarray(0, 16), { nr: 6, arch: 0 }), /past its last/);
  assert.throws(() => runSeccomp(insn(0x28, 0, 0, 0), { nr: 0, arch: 0 }), /unsupported opcode/);
  assert.throws(() => runSeccomp(insn(0x20, 0, 0, 2), { nr: 0, arch: 0 }), /bad load/);
  assert.throws(() => runSeccomp(Buffer.alloc(12), { nr: 0, arch: 0 }), /not 1\.\.4096/);
});

// ---- Integration: the real kernel, through bubblewrap (skipped only if bwrap is absent). ----

const BWRAP = '/usr/bin/bwrap';
const POD_ARGS = [
  '--unshare-all',
  '--die-with-parent',
  '--ro-bind',
  '/usr',
  '/usr',
  '--symlink',
  'usr/bin',
  '/bin',
  '--symlink',
  'usr/lib',
  '/lib',
  '--symlink',
  'usr/lib64',
  '/lib64',
  '--proc',
  '/proc',
  '--dev',
  '/dev',
];

// bwrap must not run as host root (the pod would keep capabilities), so drop to nobody.
function runInPod(command: string[], filterPath: string | null) {
  const fd = filterPath === null ? 'ignore' : openSync(filterPath, 'r');
  try {
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const seccomp = filterPath === null ? [] : ['--seccomp', '3'];
    const result = spawnSync(BWRAP, [...POD_ARGS, ...seccomp, ...command], {
      stdio: ['ignore', 'pipe', 'pipe', fd],
      env: { PATH: '/usr/bin:/bin' },
      cwd: '/',
      timeout: 20_000,
      ...asNobody,
    });
    assert.equal(result.error, undefined);
    return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
  } finally {
    if (typeof fd === 'number') closeSync(fd); // each spawn needs its own fd: bwrap reads to EOF
  }
}

function withFilterFile(body: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'clawpod-seccomp-'));
  try {
    const path = join(dir, 'filter.bpf');
    writeFileSync(path, buildSeccompProgram());
    body(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('bwrap: the filter refuses unshare -U, which works without it', (t) => {
  if (!existsSync(BWRAP)) return t.skip('bwrap not installed');
  const control = runInPod(['/usr/bin/unshare', '-U', 'true'], null);
  assert.equal(control.status, 0, `unfiltered unshare failed: ${control.stderr}`);
  withFilterFile((path) => {
    const denied = runInPod(['/usr/bin/unshare', '-U', 'true'], path);
    assert.notEqual(denied.status, 0);
    assert.match(denied.stderr, /Operation not permitted/);
  });
});

test('bwrap: /bin/true runs normally under the filter', (t) => {
  if (!existsSync(BWRAP)) return t.skip('bwrap not installed');
  withFilterFile((path) => {
    const ok = runInPod(['/bin/true'], path);
    assert.equal(ok.status, 0, ok.stderr);
  });
});

// Checks the argument offsets against the kernel itself, which the interpreter cannot do.
// Each probe picks arguments whose errno differs between "filtered" (EPERM/ENOSYS) and
// "reached the kernel" (EINVAL/ENOTTY/success), so no probe ever creates a process.
const PROBE = `
import ctypes, fcntl, json, os, socket, sys
AT = 0xffffffffffffff9c
libc = ctypes.CDLL(None, use_errno=True)
nr = json.loads(sys.argv[1])
def call(name, *args):
    conv = [ctypes.c_char_p(a) if isinstance(a, bytes) else ctypes.c_ulong(a) for a in args]
    r = libc.syscall(ctypes.c_long(nr[name]), *conv)
    return 0 if r >= 0 else ctypes.get_errno()
def attempt(fn):
    try:
        fn(); return 0
    except OSError as e:
        return e.errno
print(json.dumps({
  "clone_newuser": call("clone", 0x10000000 | 0x200),
  "clone_thread": call("clone", 0x10000),
  "clone3": call("clone3", 0, 0),
  "tiocsti": attempt(lambda: fcntl.ioctl(0, 0x5412, b"x")),
  "tcgets": attempt(lambda: fcntl.ioctl(0, 0x5401, bytes(64))),
  "netlink_route": attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()),
  "netlink_audit": attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9).close()),
  "netlink_high_bits": call("socket", 16, 3, 0x100000009),
  "netlink_pair": call("socketpair", 16, 3, 0, 0),
  # Owners: EPERM from the filter, or ENOENT from the kernel (nothing to change).
  "fchownat_root": call("fchownat", AT, b"/nonexistent", 0, 0, 0),
  "fchownat_high_root": call("fchownat", AT, b"/nonexistent", 0xffffffff00000000, 0xffffffff, 0),
  "fchownat_keep": call("fchownat", AT, b"/nonexistent", 0xffffffff, 0xffffffff, 0),
  "fchownat_pod": call("fchownat", AT, b"/nonexistent", 1000, 1000, 0),
  "unix": attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()),
  "personality_query": call("personality", 0xffffffff),
  "personality_norandom": call("personality", 0x0040000),
  # Modes: refused with EPERM, or the kernel answers ENOENT/EBADF (nothing exists to change).
  "fchmodat_suid": call("fchmodat", AT, b"/nonexistent", 0o4755),
  "fchmodat_plain": call("fchmodat", AT, b"/nonexistent", 0o755),
  "fchmodat2_sgid": call("fchmodat2", AT, b"/nonexistent", 0o2755, 0),
  "fchmod_suid": call("fchmod", 0xffffffff, 0o4755),
  "fchmod_plain": call("fchmod", 0xffffffff, 0o755),
  "mkdirat_sgid": call("mkdirat", AT, b"/nonexistent/d", 0o2755),
  "mknodat_suid": call("mknodat", AT, b"/nonexistent/f", 0o104755, 0),
  "openat_creat_suid": call("openat", AT, b"/nonexistent/f", 0o101, 0o4755),
  "openat_creat_plain": call("openat", AT, b"/nonexistent/f", 0o101, 0o644),
  "openat_tmpfile_suid": call("openat", AT, b"/nonexistent", os.O_TMPFILE | os.O_WRONLY, 0o4755),
  "openat_dir_garbage": call("openat", AT, b"/nonexistent", os.O_DIRECTORY, 0o7777),
  "openat2": call("openat2", AT, b"/nonexistent", 0, 0),
}))
`;

test('bwrap: the kernel applies the argument checks as runSeccomp does', (t) => {
  if (!existsSync(BWRAP)) return t.skip('bwrap not installed');
  if (!existsSync('/usr/bin/python3')) return t.skip('python3 not installed');
  const arch = hostArch();
  const numbers = JSON.stringify(
    Object.fromEntries(
      ['clone', 'clone3', 'personality', 'socket', 'socketpair', 'fchownat', 'fchmodat', 'fchmodat2', 'fchmod', 'mkdirat', 'mknodat', 'openat', 'openat2'].map(
        (name) => [name, nrOf(arch, name)],
      ),
    ),
  );
  withFilterFile((path) => {
    const probe = runInPod(['/usr/bin/python3', '-c', PROBE, numbers], path);
    assert.equal(probe.status, 0, probe.stderr);
    assert.deepEqual(JSON.parse(probe.stdout), {
      clone_newuser: 1, // EPERM from the filter (EINVAL from the kernel otherwise)
      clone_thread: 22, // EINVAL: CLONE_THREAD without CLONE_SIGHAND reached the kernel
      clone3: 38,
      tiocsti: 1, // ENOTTY (25) if the call had reached /dev/null
      tcgets: 25,
      netlink_route: 0,
      netlink_audit: 1, // the kernel would create it (EPROTONOSUPPORT at worst), not EPERM
      netlink_high_bits: 1,
      netlink_pair: 1, // EOPNOTSUPP (95) from the kernel
      fchownat_root: 1,
      fchownat_high_root: 1,
      fchownat_keep: 2,
      fchownat_pod: 2,
      unix: 0,
      personality_query: 0,
      personality_norandom: 1,
      fchmodat_suid: 1, // ENOENT (2) if the call had reached the kernel
      fchmodat_plain: 2,
      fchmodat2_sgid: 1,
      fchmod_suid: 1, // EBADF (9) otherwise
      fchmod_plain: 9,
      mkdirat_sgid: 1,
      mknodat_suid: 1,
      openat_creat_suid: 1,
      openat_creat_plain: 2,
      openat_tmpfile_suid: 1,
      openat_dir_garbage: 2,
      openat2: 38,
    });
  });
});
