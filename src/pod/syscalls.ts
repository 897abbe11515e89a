// Syscall numbers for the two architectures clawpod's seccomp filter supports.
//
// x86_64 numbers come from arch/x86/entry/syscalls/syscall_64.tbl, aarch64 numbers from the
// generic table (include/uapi/asm-generic/unistd.h). Legacy calls that aarch64 never had are
// simply absent: a filter cannot refer to a number that does not exist there. Numbers from 424
// upwards are shared by every architecture since Linux 5.1. Only the calls the filter names (and
// a few the tests use as "must stay allowed" controls) are listed: this is not a full table.

export type Arch = 'x86_64' | 'aarch64';

type SyscallNumbers = { readonly x86_64?: number; readonly aarch64?: number };

const TABLE: Readonly<Record<string, SyscallNumbers>> = {
  // Everyday calls, used by tests as controls that must stay allowed.
  read: { x86_64: 0, aarch64: 63 },
  write: { x86_64: 1, aarch64: 64 },
  execve: { x86_64: 59, aarch64: 221 },
  getpid: { x86_64: 39, aarch64: 172 },
  landlock_create_ruleset: { x86_64: 444, aarch64: 444 },
  landlock_add_rule: { x86_64: 445, aarch64: 445 },
  landlock_restrict_self: { x86_64: 446, aarch64: 446 },

  // Calls whose arguments the filter inspects.
  clone: { x86_64: 56, aarch64: 220 },
  clone3: { x86_64: 435, aarch64: 435 },
  ioctl: { x86_64: 16, aarch64: 29 },
  socket: { x86_64: 41, aarch64: 198 },
  socketpair: { x86_64: 53, aarch64: 199 },
  personality: { x86_64: 135, aarch64: 92 },
  // Calls that take a file mode (set-id bits are refused); openat2 takes it in memory.
  open: { x86_64: 2 },
  openat: { x86_64: 257, aarch64: 56 },
  creat: { x86_64: 85 },
  openat2: { x86_64: 437, aarch64: 437 },
  chmod: { x86_64: 90 },
  fchmod: { x86_64: 91, aarch64: 52 },
  fchmodat: { x86_64: 268, aarch64: 53 },
  fchmodat2: { x86_64: 452, aarch64: 452 },
  mkdir: { x86_64: 83 },
  mkdirat: { x86_64: 258, aarch64: 34 },
  mknod: { x86_64: 133 },
  mknodat: { x86_64: 259, aarch64: 33 },
  // Calls that change a file's owner (only to the pod's own ids).
  chown: { x86_64: 92 },
  fchown: { x86_64: 93, aarch64: 55 },
  lchown: { x86_64: 94 },
  fchownat: { x86_64: 260, aarch64: 54 },

  // Namespaces, mounts and the root directory.
  mount: { x86_64: 165, aarch64: 40 },
  umount2: { x86_64: 166, aarch64: 39 },
  unshare: { x86_64: 272, aarch64: 97 },
  setns: { x86_64: 308, aarch64: 268 },
  pivot_root: { x86_64: 155, aarch64: 41 },
  chroot: { x86_64: 161, aarch64: 51 },
  open_tree: { x86_64: 428, aarch64: 428 },
  move_mount: { x86_64: 429, aarch64: 429 },
  fsopen: { x86_64: 430, aarch64: 430 },
  fsconfig: { x86_64: 431, aarch64: 431 },
  fsmount: { x86_64: 432, aarch64: 432 },
  fspick: { x86_64: 433, aarch64: 433 },
  mount_setattr: { x86_64: 442, aarch64: 442 },
  open_tree_attr: { x86_64: 467, aarch64: 467 },

  // Other processes' memory and kernel objects.
  ptrace: { x86_64: 101, aarch64: 117 },
  process_vm_readv: { x86_64: 310, aarch64: 270 },
  process_vm_writev: { x86_64: 311, aarch64: 271 },
  kcmp: { x86_64: 312, aarch64: 272 },
  pidfd_getfd: { x86_64: 438, aarch64: 438 },
  bpf: { x86_64: 321, aarch64: 280 },
  perf_event_open: { x86_64: 298, aarch64: 241 },
  userfaultfd: { x86_64: 323, aarch64: 282 },
  io_uring_setup: { x86_64: 425, aarch64: 425 },
  io_uring_enter: { x86_64: 426, aarch64: 426 },
  io_uring_register: { x86_64: 427, aarch64: 427 },
  fanotify_init: { x86_64: 300, aarch64: 262 },
  open_by_handle_at: { x86_64: 304, aarch64: 265 },
  name_to_handle_at: { x86_64: 303, aarch64: 264 },

  // Keyrings (not namespaced).
  keyctl: { x86_64: 250, aarch64: 219 },
  add_key: { x86_64: 248, aarch64: 217 },
  request_key: { x86_64: 249, aarch64: 218 },

  // Kernel, modules, machine-wide state.
  kexec_load: { x86_64: 246, aarch64: 104 },
  kexec_file_load: { x86_64: 320, aarch64: 294 },
  init_module: { x86_64: 175, aarch64: 105 },
  finit_module: { x86_64: 313, aarch64: 273 },
  delete_module: { x86_64: 176, aarch64: 106 },
  swapon: { x86_64: 167, aarch64: 224 },
  swapoff: { x86_64: 168, aarch64: 225 },
  reboot: { x86_64: 169, aarch64: 142 },
  acct: { x86_64: 163, aarch64: 89 },
  quotactl: { x86_64: 179, aarch64: 60 },
  quotactl_fd: { x86_64: 443, aarch64: 443 },
  syslog: { x86_64: 103, aarch64: 116 },
  settimeofday: { x86_64: 164, aarch64: 170 },
  clock_settime: { x86_64: 227, aarch64: 112 },
  clock_adjtime: { x86_64: 305, aarch64: 266 },
  adjtimex: { x86_64: 159, aarch64: 171 },
  lookup_dcookie: { x86_64: 212, aarch64: 18 },
  vhangup: { x86_64: 153, aarch64: 58 },
  nfsservctl: { x86_64: 180, aarch64: 42 },
  io_setup: { x86_64: 206, aarch64: 0 },
  memfd_secret: { x86_64: 447, aarch64: 447 },
  move_pages: { x86_64: 279, aarch64: 239 },
  migrate_pages: { x86_64: 256, aarch64: 238 },
  modify_ldt: { x86_64: 154 },

  // x86-only: raw port I/O and legacy calls aarch64 never had.
  iopl: { x86_64: 172 },
  ioperm: { x86_64: 173 },
  uselib: { x86_64: 134 },
  _sysctl: { x86_64: 156 },
  create_module: { x86_64: 174 },
  get_kernel_syms: { x86_64: 177 },
  query_module: { x86_64: 178 },
  afs_syscall: { x86_64: 183 },
};

/** The syscall number of `name` on `arch`, or undefined when that arch has no such call. */
export function syscallNumber(arch: Arch, name: string): number | undefined {
  return Object.hasOwn(TABLE, name) ? TABLE[name][arch] : undefined;
}

/** All names this table knows, for tests that cross-check the numbers. */
export function knownSyscalls(): string[] {
  return Object.keys(TABLE);
}
