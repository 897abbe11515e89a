// A classic-BPF seccomp filter, generated in plain TypeScript, for bubblewrap's `--seccomp FD`.
//
// bwrap reads the raw `struct sock_filter[]` from the fd and installs it with
// prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER) right before it execs the pod's command, so the
// filter binds the command and everything it starts, but not bwrap's own namespace setup.
// The policy is a denylist on purpose: a pod runs arbitrary tools, and the namespaces already
// confine them; the filter only removes kernel attack surface and escape hatches that
// namespaces do not cover (new namespaces, mounts, keyrings, io_uring, ptrace, ...), and
// set-id file modes, which a writable attachment would carry onto the host.
//
// The program is a flat sequence of `JEQ nr; RET action` pairs followed by a few
// argument-inspecting blocks. Every jump is short and forward, so no offset comes near the
// u8 limit and the whole program is easy to read back with `runSeccomp`.

import { POD_UID } from './bwrap-argv.js';
import { type Arch, knownSyscalls, syscallNumber } from './syscalls.js';

export type { Arch } from './syscalls.js';

/** Return values of a seccomp filter (include/uapi/linux/seccomp.h). */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  ERRNO: 0x00050000,
  ALLOW: 0x7fff0000,
} as const;

/** `seccomp_data.arch` values (include/uapi/linux/audit.h). */
export const AUDIT_ARCH: Readonly<Record<Arch, number>> = {
  x86_64: 0xc000003e,
  aarch64: 0xc00000b7,
};

const EPERM = 1;
const ENOSYS = 38;
const RET_EPERM = SECCOMP_RET.ERRNO | EPERM;
const RET_ENOSYS = SECCOMP_RET.ERRNO | ENOSYS;

// x32 syscalls are x86_64 numbers with this bit set; they reach different kernel entry points,
// so a filter matching x86_64 numbers alone would let x32 variants of denied calls through.
const X32_SYSCALL_BIT = 0x40000000;

// Offsets into struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }.
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const OFFSET_ARGS = 16;
const SECCOMP_DATA_SIZE = 64;

// Classic BPF opcodes, already combined (class | size | mode / class | op | source).
const LD_W_ABS = 0x20;
const LD_IMM = 0x00;
const JMP_JA = 0x05;
const JMP_JEQ_K = 0x15;
const JMP_JGT_K = 0x25;
const JMP_JGE_K = 0x35;
const JMP_JSET_K = 0x45;
const RET_K = 0x06;
const RET_A = 0x16;

const BPF_MAXINSNS = 4096;
const JUMP_MAX = 255;

/** Syscalls that always fail with EPERM inside a pod. Names missing on an arch are skipped. */
export const DENIED_SYSCALLS: readonly string[] = [
  // New namespaces, mounts and root changes: the pod's view of the system is fixed by bwrap.
  'mount',
  'umount2',
  'unshare',
  'setns',
  'pivot_root',
  'chroot',
  'move_mount',
  'open_tree',
  'open_tree_attr',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'mount_setattr',
  // Other processes' memory, and file handles that can walk out of a bind mount.
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'kcmp',
  'pidfd_getfd',
  'open_by_handle_at',
  'name_to_handle_at',
  // Large kernel attack surface with no use in a task pod. io_uring performs I/O without
  // passing through seccomp at all, so it must go entirely.
  'bpf',
  'perf_event_open',
  'userfaultfd',
  'fanotify_init',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  // Keyrings are not namespaced: a pod could read or plant the host user's keys.
  'keyctl',
  'add_key',
  'request_key',
  // Machine-wide state: kernel images, modules, swap, clocks, accounting, the kernel log.
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
  'quotactl_fd',
  'syslog',
  'settimeofday',
  'clock_settime',
  'clock_adjtime',
  'adjtimex',
  'lookup_dcookie',
  'vhangup',
  'iopl',
  'ioperm',
  // Kernel surface no task pod needs (Docker's default profile refuses them too): per-process
  // LDTs, secret memory that fragments the kernel's direct map, moving pages between NUMA nodes.
  'modify_ldt',
  'memfd_secret',
  'move_pages',
  'migrate_pages',
  // Legacy calls (x86_64 only); most are unimplemented, denying them costs nothing.
  'uselib',
  'nfsservctl',
  '_sysctl',
  'create_module',
  'get_kernel_syms',
  'query_module',
  'afs_syscall',
];

// CLONE_NEW* flags. clone3 is refused with ENOSYS (its flags live in memory seccomp cannot
// read), so libc falls back to clone, whose flags are a register this filter can inspect.
const CLONE_NAMESPACE_FLAGS =
  0x00000080 | // CLONE_NEWTIME
  0x00020000 | // CLONE_NEWNS
  0x02000000 | // CLONE_NEWCGROUP
  0x04000000 | // CLONE_NEWUTS
  0x08000000 | // CLONE_NEWIPC
  0x10000000 | // CLONE_NEWUSER
  0x20000000 | // CLONE_NEWPID
  0x40000000; //  CLONE_NEWNET

type ArgTest = { kind: 'anyBit'; mask: number } | { kind: 'oneOf'; values: readonly number[] } | { kind: 'noneOf'; values: readonly number[] };

/** One argument and the test it must pass. */
type ArgCheck = { arg: number; test: ArgTest };

/** An ArgRule's `otherwise` that goes on to the next rule (for the same syscall) instead of returning. */
const NEXT = 'next';

/**
 * One syscall decided by its arguments: `onMatch` when every check in `when` matches (so a mode
 * can be tested only when the flags say there is one), `otherwise` when any fails; several rules
 * for one syscall are chained with `otherwise: NEXT`, and the last one must return.
 * Only the low 32 bits of an argument are compared. That is exact for every argument checked
 * here: flags, requests, socket domains and protocols are int or unsigned int, uid_t and gid_t
 * are 32 bits, a mode is a umode_t that the kernel truncates to 16 bits, and clone keeps its
 * namespace flags in the low word (the kernel truncates them too), so high bits can neither
 * smuggle a value past nor add a bit the filter missed.
 */
type ArgRule = {
  syscall: string;
  when: readonly ArgCheck[];
  onMatch: number;
  otherwise: number | typeof NEXT;
};

const anyBit = (arg: number, mask: number): ArgCheck => ({ arg, test: { kind: 'anyBit', mask } });
const oneOf = (arg: number, values: readonly number[]): ArgCheck => ({ arg, test: { kind: 'oneOf', values } });
const noneOf = (arg: number, values: readonly number[]): ArgCheck => ({ arg, test: { kind: 'noneOf', values } });

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const SETID_BITS = S_ISUID | S_ISGID;
// O_CREAT, or __O_TMPFILE: the only flags with which open uses its mode. O_TMPFILE is __O_TMPFILE
// plus O_DIRECTORY, but only the __O_TMPFILE bit is tested: O_DIRECTORY alone is opendir, which
// leaves whatever happens to be in the mode register (and O_DIRECTORY differs between arches).
const O_CREAT = 0o100;
const O_TMPFILE_BIT = 0o20000000;

// Writable attachments (workspace: rw, mode: rw mounts, --memory) write through an idmap, so a
// pod's file lands on the host as its owner's: a set-id mode there would be a host setuid binary
// (or setgid file or directory). Refuse every mode argument carrying S_ISUID or S_ISGID, in every
// pod (an overlay pod's harvest strips them anyway, so nothing of value is lost).
const SETID_MODE_ARG: ReadonlyArray<[string, number]> = [
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

const AF_NETLINK = 16;
const AF_PACKET = 17;
const AF_VSOCK = 40;
const NETLINK_ROUTE = 0;

// The pod runs as POD_UID:POD_UID and its user namespace maps nothing else, so the kernel answers
// EINVAL for any other id, where tar, cp -p, npm and pip expect what a non-root user gets: EPERM.
// (uid_t)-1 leaves the id as it is.
const OWN_ID_OR_KEEP = [POD_UID, 0xffffffff];
const OWNER_ARGS: ReadonlyArray<[string, number, number]> = [
  ['chown', 1, 2],
  ['fchown', 1, 2],
  ['lchown', 1, 2],
  ['fchownat', 2, 3],
];

const ARG_RULES: readonly ArgRule[] = [
  { syscall: 'clone', when: [anyBit(0, CLONE_NAMESPACE_FLAGS)], onMatch: RET_EPERM, otherwise: SECCOMP_RET.ALLOW },
  // A terminal the pod may share with the user: TIOCSTI / TIOCLINUX push keystrokes into it;
  // TIOCSETD changes its line discipline (n_null discards everything, and outlives the pod:
  // clawpod restores termios and size, not the discipline), TIOCEXCL locks the user out of
  // reopening it, TCXONC stops its output, TIOCCONS redirects the console to it, TIOCSCTTY and
  // TIOCVHANGUP take it over or hang it up.
  { syscall: 'ioctl', when: [oneOf(1, [0x5412, 0x541c, 0x5423, 0x540c, 0x540a, 0x541d, 0x540e, 0x5437])], onMatch: RET_EPERM, otherwise: SECCOMP_RET.ALLOW },
  // Raw packet and vsock sockets reach the network card or the hypervisor directly. AF_UNIX
  // stays: the in-pod forwarder to the host proxy needs it.
  { syscall: 'socket', when: [oneOf(0, [AF_PACKET, AF_VSOCK])], onMatch: RET_EPERM, otherwise: NEXT },
  // Netlink: route only, which os.networkInterfaces(), if_nameindex() and `ip addr` need. It sees
  // the pod's own network namespace (only lo), and changing anything there needs CAP_NET_ADMIN,
  // which no pod process has. Every other protocol (sock_diag, audit, uevent, netfilter, xfrm,
  // generic...) reaches kernel state or subsystems shared with the host.
  { syscall: 'socket', when: [oneOf(0, [AF_NETLINK]), noneOf(2, [NETLINK_ROUTE])], onMatch: RET_EPERM, otherwise: SECCOMP_RET.ALLOW },
  // socketpair creates its sockets like socket() does before the family refuses the pair (and
  // may load a protocol module doing so): the same families are refused outright.
  { syscall: 'socketpair', when: [oneOf(0, [AF_NETLINK, AF_PACKET, AF_VSOCK])], onMatch: RET_EPERM, otherwise: SECCOMP_RET.ALLOW },
  ...OWNER_ARGS.map(
    ([syscall, uid, gid]): ArgRule => ({
      syscall,
      when: [oneOf(uid, OWN_ID_OR_KEEP), oneOf(gid, OWN_ID_OR_KEEP)],
      onMatch: SECCOMP_RET.ALLOW,
      otherwise: RET_EPERM,
    }),
  ),
  // personality can switch off ASLR or change the ABI; only PER_LINUX and the query pass.
  { syscall: 'personality', when: [oneOf(0, [0, 0xffffffff])], onMatch: SECCOMP_RET.ALLOW, otherwise: RET_EPERM },
  ...SETID_MODE_ARG.map(([syscall, arg]): ArgRule => ({ syscall, when: [anyBit(arg, SETID_BITS)], onMatch: RET_EPERM, otherwise: SECCOMP_RET.ALLOW })),
  { syscall: 'open', when: [anyBit(1, O_CREAT | O_TMPFILE_BIT), anyBit(2, SETID_BITS)], onMatch: RET_EPERM, otherwise: SECCOMP_RET.ALLOW },
  { syscall: 'openat', when: [anyBit(2, O_CREAT | O_TMPFILE_BIT), anyBit(3, SETID_BITS)], onMatch: RET_EPERM, otherwise: SECCOMP_RET.ALLOW },
];

type Insn = { code: number; jt: number; jf: number; k: number };

const stmt = (code: number, k: number): Insn => ({ code, jt: 0, jf: 0, k });
const jump = (code: number, k: number, jt: number, jf: number): Insn => ({ code, jt, jf, k });

/** The architecture Node runs on, as the filter names it. Unknown arches fail closed. */
export function hostArch(nodeArch: string = process.arch): Arch {
  if (nodeArch === 'x64') return 'x86_64';
  if (nodeArch === 'arm64') return 'aarch64';
  throw new Error(`seccomp: no filter for CPU architecture "${nodeArch}" (x64 and arm64 only)`);
}

/** The filter as raw `struct sock_filter[]` bytes, ready to hand to `bwrap --seccomp FD`. */
export function buildSeccompProgram(arch: Arch = hostArch()): Buffer {
  return assemble(buildInstructions(arch));
}

function buildInstructions(arch: Arch): Insn[] {
  const prologue = [stmt(LD_W_ABS, OFFSET_ARCH), jump(JMP_JEQ_K, AUDIT_ARCH[arch], 1, 0), stmt(RET_K, SECCOMP_RET.KILL_PROCESS), stmt(LD_W_ABS, OFFSET_NR)];
  if (arch === 'x86_64') {
    // JGE rather than JSET: anything at or above the x32 bit is x32 or not a syscall at all.
    prologue.push(jump(JMP_JGE_K, X32_SYSCALL_BIT, 0, 1), stmt(RET_K, SECCOMP_RET.KILL_PROCESS));
  }
  const fixed: Array<[string, number]> = [
    ...DENIED_SYSCALLS.map((name): [string, number] => [name, RET_EPERM]),
    // clone3 and openat2 take their flags and mode in memory, which seccomp cannot read. ENOSYS
    // is what an older kernel answers, so libc and runtimes fall back to clone and openat.
    ['clone3', RET_ENOSYS],
    ['openat2', RET_ENOSYS],
    // Kernel AIO contexts come from one host-wide pool (fs.aio-max-nr): a pod that takes them
    // all fails every host user's io_setup. ENOSYS: programs fall back to threads.
    ['io_setup', RET_ENOSYS],
  ];
  const fixedInsns = fixed.flatMap(([name, action]) => {
    const nr = resolve(arch, name);
    return nr === undefined ? [] : [jump(JMP_JEQ_K, nr, 0, 1), stmt(RET_K, action)];
  });
  const argInsns = ARG_RULES.flatMap((rule, i) => {
    // A NEXT that fell through to another syscall's rules would end in the final ALLOW.
    if (rule.otherwise === NEXT && ARG_RULES[i + 1]?.syscall !== rule.syscall) {
      throw new Error(`seccomp: rule for ${rule.syscall} goes on to no further rule for it`);
    }
    const nr = resolve(arch, rule.syscall);
    return nr === undefined ? [] : argRuleBlock(nr, rule);
  });
  return [...prologue, ...fixedInsns, ...argInsns, stmt(RET_K, SECCOMP_RET.ALLOW)];
}

// A name the table does not know is a typo, and a typo in a denylist silently allows the
// call: refuse to build instead. A known name absent on this arch is simply skipped.
function resolve(arch: Arch, name: string): number | undefined {
  if (!knownSyscalls().includes(name)) throw new Error(`seccomp: unknown syscall "${name}"`);
  return syscallNumber(arch, name);
}

// `JEQ nr` then a body that always returns (or, for NEXT, reloads nr and falls through), so the
// false branch skips exactly the body and the accumulator still holds nr for whatever follows.
// The body loads and tests each argument in turn; a failed test jumps straight to the
// `otherwise` instruction, so reaching the `onMatch` return means every test matched.
function argRuleBlock(nr: number, rule: ArgRule): Insn[] {
  if (rule.when.length === 0) throw new Error(`seccomp: rule for ${rule.syscall} tests nothing`);
  let checks: Insn[] = [];
  let toOtherwise = 1; // instructions between a test's end and the `otherwise` return
  for (const check of [...rule.when].reverse()) {
    const insns = [
      stmt(LD_W_ABS, OFFSET_ARGS + 8 * check.arg), // low word: both arches are little-endian
      ...argTest(check.test, toOtherwise),
    ];
    checks = [...insns, ...checks];
    toOtherwise += insns.length;
  }
  const otherwise = rule.otherwise === NEXT ? stmt(LD_W_ABS, OFFSET_NR) : stmt(RET_K, rule.otherwise);
  const body = [...checks, stmt(RET_K, rule.onMatch), otherwise];
  return [jump(JMP_JEQ_K, nr, 0, body.length), ...body];
}

// Falls through on a match, and skips `miss` instructions otherwise.
function argTest(test: ArgTest, miss: number): Insn[] {
  if (test.kind === 'anyBit') return [jump(JMP_JSET_K, test.mask, 0, miss)];
  const n = test.values.length;
  if (test.kind === 'noneOf') return test.values.map((value, i) => jump(JMP_JEQ_K, value, n - 1 - i + miss, 0));
  return test.values.map((value, i) => jump(JMP_JEQ_K, value, n - 1 - i, i === n - 1 ? miss : 0));
}

// The kernel rejects an invalid filter, but only at exec time inside the pod, where the error
// is an opaque EINVAL. Checking here turns that into a clear error at build time.
function assemble(insns: readonly Insn[]): Buffer {
  if (insns.length === 0 || insns.length > BPF_MAXINSNS) {
    throw new Error(`seccomp: program has ${insns.length} instructions (1..${BPF_MAXINSNS})`);
  }
  const last = insns[insns.length - 1];
  if (last.code !== RET_K) throw new Error('seccomp: program does not end with a return');
  const out = Buffer.alloc(insns.length * 8);
  insns.forEach((insn, pc) => {
    if (insn.jt > JUMP_MAX || insn.jf > JUMP_MAX) throw new Error(`seccomp: jump too far at ${pc}`);
    const isJump = (insn.code & 0x07) === 0x05;
    const reach = insn.code === JMP_JA ? insn.k : Math.max(insn.jt, insn.jf);
    if (isJump && pc + 1 + reach >= insns.length) {
      throw new Error(`seccomp: jump out of the program at ${pc}`);
    }
    out.writeUInt16LE(insn.code, pc * 8);
    out.writeUInt8(insn.jt, pc * 8 + 2);
    out.writeUInt8(insn.jf, pc * 8 + 3);
    out.writeUInt32LE(insn.k >>> 0, pc * 8 + 4);
  });
  return out;
}

export type SeccompData = { nr: number; arch: number; args?: readonly bigint[] };

/**
 * Runs a filter on one syscall and returns the action value, as the kernel would.
 * It understands the opcodes this module emits plus LD IMM, JA, JGT and RET A, and throws on
 * anything else, so a program it cannot read is never reported as allowing something.
 */
export function runSeccomp(program: Buffer, data: SeccompData): number {
  const count = program.length / 8;
  if (!Number.isInteger(count) || count === 0 || count > BPF_MAXINSNS) {
    throw new Error(`seccomp: program of ${program.length} bytes is not 1..${BPF_MAXINSNS} insns`);
  }
  const mem = seccompDataBytes(data);
  let a = 0;
  let pc = 0;
  while (pc < count) {
    const at = pc * 8;
    const code = program.readUInt16LE(at);
    const jt = program.readUInt8(at + 2);
    const jf = program.readUInt8(at + 3);
    const k = program.readUInt32LE(at + 4);
    pc += 1;
    switch (code) {
      case LD_W_ABS:
        if (k % 4 !== 0 || k + 4 > SECCOMP_DATA_SIZE) throw new Error(`seccomp: bad load ${k}`);
        a = mem.readUInt32LE(k);
        break;
      case LD_IMM:
        a = k;
        break;
      case JMP_JA:
        pc += k;
        break;
      case JMP_JEQ_K:
        pc += a === k ? jt : jf;
        break;
      case JMP_JGT_K:
        pc += a > k ? jt : jf;
        break;
      case JMP_JGE_K:
        pc += a >= k ? jt : jf;
        break;
      case JMP_JSET_K:
        pc += (a & k) !== 0 ? jt : jf;
        break;
      case RET_K:
        return k;
      case RET_A:
        return a;
      default:
        throw new Error(`seccomp: unsupported opcode 0x${code.toString(16)} at ${pc - 1}`);
    }
  }
  throw new Error('seccomp: program ran past its last instruction');
}

function seccompDataBytes(data: SeccompData): Buffer {
  const args = data.args ?? [];
  if (args.length > 6) throw new Error('seccomp: a syscall has at most 6 arguments');
  const mem = Buffer.alloc(SECCOMP_DATA_SIZE);
  mem.writeUInt32LE(data.nr >>> 0, OFFSET_NR);
  mem.writeUInt32LE(data.arch >>> 0, OFFSET_ARCH);
  args.forEach((arg, i) => mem.writeBigUInt64LE(BigInt.asUintN(64, arg), OFFSET_ARGS + 8 * i));
  return mem;
}
