// Pure builders of the two command lines that start a pod: the prelude's (clawpod-podinit)
// and bubblewrap's. No I/O here, so unit tests check every flag without spawning anything.
import type { Rules } from '../policy/types.js';
import type { SysView } from './sysview.js';
import { podWorkspaceDir, workspaceAtRefusal } from './workspace-at.js';

/** Facts about the host that shape the command line, gathered once by the backend. */
export interface HostLayout {
  bwrap: string;
  podinit: string;
  /** Privileged mode: clawpod is root, each pod gets its own uid. Otherwise: user namespace. */
  privileged: boolean;
  /** Mountpoint of the pod's private stage tmpfs (inside the prelude's mount namespace). */
  stage: string;
  /** Top-level symlinks into /usr that this host has (/bin -> usr/bin, /lib64 -> usr/lib64...). */
  usrLinks: Record<string, string>;
  /** Read-only host files the pod needs from /etc (that exist here). */
  etcBinds: string[];
  /** Directory holding clawpod's synthetic passwd, group and hosts (see syntheticEtc). */
  etcDir: string;
  /** The in-pod forwarder binary, copied where pod uids can reach it. */
  forwarder: string;
  /** The live pod's executor binary (clawpod-podexec), likewise. */
  executor: string;
  /** The first program of a pod with a terminal (clawpod-podtty), likewise. */
  podtty?: string;
  /** A warm pod's resident (clawpod-podwait), likewise. */
  podwait?: string;
}

export interface PodIdentity {
  uid: number;
  gid: number;
  ownerUid: number;
  ownerGid: number;
}

/** File descriptors in the spawned prelude: the seccomp program for bwrap, the prelude's status,
 *  and the go signal that lets the prepared pod start; from FD.etc on, one pipe per etcData file. */
export const FD = { seccomp: 3, status: 4, go: 5, channel: 6, etc: 7 } as const;

export const POD_UID = 1000;
export const POD_HOME = '/home/pod';
export const POD_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin';

/** Inside the pod: where the proxy is reached, and the files that make it reachable. */
export const EGRESS = { port: 3128, socket: '/run/clawpod/proxy.sock', forwarder: '/run/clawpod/fwd', ca: '/etc/clawpod/ca.pem' } as const;

/** Inside a live pod: the executor that runs each command sent to the pod. */
export const EXECUTOR = '/run/clawpod/exec';

/** Inside a pod with a terminal: what gives the command the terminal's foreground (podtty.c). */
export const PODTTY = '/run/clawpod/tty';

/** Inside a warm pod: what waits for the one command a run sends and becomes it (podwait.c). */
export const PODWAIT = '/run/clawpod/wait';

export interface PodArgvInput {
  rules: Rules;
  workspace: string | null;
  command: string[];
  changesDir: string | null;
  cgroupProcs: string[];
  cgroupInto: string | null;
  /** Unprivileged only: copy the workspace instead of an overlay (forced; also automatic fallback). */
  copyWorkspace?: boolean;
  egress?: { socketPath: string; caBundle?: string };
  /** A live pod: the executor is the pod's command and runs what exec() sends it. */
  live?: boolean;
  identity: PodIdentity | null;
  env: Record<string, string>;
  /** "DEV:INO" of each host source (workspace, mounts) as clawpod checked it: the prelude
   *  mounts a source only if it is still that object (see pinSource in bwrap.ts). */
  sourceIds: Record<string, string>;
  /** Pod paths (/etc/NAME) whose content comes on fds FD.etc, FD.etc + 1, ... (see podEtcFiles). */
  etcData?: string[];
  /** The stage is an unnamed copy of this ext4 template on a loop device (see stage.ts); absent:
   *  a tmpfs, charged to the pod's memory. */
  stageImage?: string | null;
  /** The pod's CPU affinity ("0-1") and the synthetic online file naming it (see cpus.ts). */
  cpus?: { list: string; onlineFile: string };
  /** The pod's /sys: its own cgroup dirs and CPU online file on one skeleton (see podSysView). */
  sysView?: SysView | null;
  /** Stdio is a pty of the pod's own (native/pty.c, clawpod exec -t); see ttyArgs. */
  tty?: boolean;
  /** A warm pod (pod/warm.ts): `command` is ignored; clawpod-podwait waits for the run's on stdin,
   *  says it is ready on FD.channel, and the change set's destination comes on FD.go. */
  warm?: boolean;
}

/** Where clawpod's workspace lock files live (beside the stage, in the state dir no pod sees):
 *  one per directory identity, shared by writable pods, exclusive for `runs apply`. */
export function lockDirOf(stage: string): string {
  return `${stage.replace(/\/[^/]*$/, '')}/locks`;
}

/** The stage's inode cap: tmpfs counts inodes apart from bytes, so without it a pod could pass
 *  its disk cap with empty files. One inode per 4 KiB of disk (at least 1024). */
export function stageInodes(diskBytes: number): number {
  return Math.max(1024, Math.floor(diskBytes / 4096));
}

export function buildPodinitArgv(host: HostLayout, p: PodArgvInput): string[] {
  const a: string[] = [];
  for (const f of p.cgroupProcs) a.push('--cgroup-procs', f);
  if (p.cgroupInto) a.push('--cgroup-dir', p.cgroupInto);
  // A live pod pins each call (its executor pins them), not the executor itself.
  if (p.cpus && !p.live) a.push('--cpus', p.cpus.list);
  if (!(p.rules.resources.diskBytes > 0)) throw new Error('a pod needs a disk cap above 0');
  a.push('--stage', host.stage, '--stage-size', String(p.rules.resources.diskBytes));
  a.push('--stage-inodes', String(stageInodes(p.rules.resources.diskBytes)));
  if (p.stageImage && host.privileged) a.push('--stage-image', p.stageImage);
  if (host.privileged) {
    if (!p.identity) throw new Error('privileged pods need an identity');
    a.push('--uid', String(p.identity.uid), '--gid', String(p.identity.gid));
    a.push('--idmap-owner', `${p.identity.ownerUid}:${p.identity.ownerGid}`);
  } else {
    a.push('--userns');
  }
  const source = (mode: string, host: string) => {
    const id = p.sourceIds[host];
    if (!id) throw new Error(`no checked identity for ${host}`);
    return `${mode}:${id}:${host}`;
  };
  if (p.workspace && p.rules.workspace !== 'none') a.push('--workspace', source(p.rules.workspace, p.workspace));
  for (const m of p.rules.mounts) a.push('--attach', source(m.mode, m.host));
  if (p.warm && (p.live || p.tty || p.egress)) throw new Error('a warm pod has no terminal, executor or egress');
  if (p.changesDir && p.rules.workspace === 'overlay' && !p.warm) a.push('--harvest', p.changesDir);
  if (p.copyWorkspace && !host.privileged && p.rules.workspace === 'overlay') a.push('--copy-workspace');
  // A warm pod starts at once; FD.go carries its change set's destination instead (known once a run takes it).
  a.push('--status-fd', String(FD.status), p.warm ? '--harvest-fd' : '--go-fd', String(FD.go), '--keep-fd', String(FD.seccomp));
  // A held pod is set up whole before go: bwrap waits, just before the command, for its seccomp
  // program, which the prelude passes on only at go (native/podinit.c, the gate).
  if (!p.warm) a.push('--gate-fd', String(FD.seccomp));
  // Writable attachments are locked shared through clawpod's own lock files (see lockDirOf).
  a.push('--lock-dir', lockDirOf(host.stage));
  // A live pod's executor channel (a socket) rides on fd 6, not on stdio: bwrap's own init (pid 1
  // in the pod, dumpable, the pod's uid) keeps only stdio, so no pod process can take over the
  // channel through it. Only the non-dumpable executor (and forwarder) hold it.
  // A warm pod's resident says it is ready on the same fd, and closes it before the command runs.
  if (p.live || p.warm) a.push('--keep-fd', String(FD.channel));
  (p.etcData ?? []).forEach((_, i) => a.push('--keep-fd', String(FD.etc + i)));
  for (const b of preludeBinds(host, p)) a.push('--ro-bind', b.src, b.dest);
  return [...a, '--', host.bwrap, ...buildBwrapArgs(host, p)];
}

/** Host dirs and files the prelude binds read-only onto mount points in the two dirs bwrap binds
 *  as a whole (the pod's /etc and /sys), in the pod's mount namespace: three system calls each
 *  there, where bwrap re-reads the whole mount table for every bind it makes. */
export function preludeBinds(host: HostLayout, p: PodArgvInput): { src: string; dest: string }[] {
  const own = [...Object.keys(syntheticEtc()), ...HOST_ETC_COPIES];
  const etc = host.etcBinds
    .filter((f) => !own.includes(f.replace(/^\/etc\//, '')))
    .map((f) => ({ src: f, dest: `${host.etcDir}/${POD_ETC_DIR}/${f.replace(/^\/etc\//, '')}` }));
  return [...etc, ...(p.sysView?.binds ?? [])];
}

/** The only /sys a pod has: its own cgroup groups and the CPUs it may use (caps a runtime sees),
 *  bound onto the skeleton by the prelude (preludeBinds). */
function sysBinds(p: PodArgvInput): string[] {
  return p.sysView ? ['--ro-bind', p.sysView.dir, '/sys'] : [];
}

function workspaceBinds(host: HostLayout, p: PodArgvInput): string[] {
  if (!p.workspace || p.rules.workspace === 'none') return ['--dir', '/workspace'];
  // At its host path (workspaceAt: host) only where that cannot cover the pod's own places.
  const refused = workspaceAtRefusal(p.rules, p.workspace);
  if (refused) throw new Error(refused);
  const at = podWorkspaceDir(p.rules, p.workspace);
  switch (p.rules.workspace) {
    case 'overlay':
      return ['--bind', `${host.stage}/ws`, at];
    case 'ro':
      return ['--ro-bind', `${host.stage}/lower`, at];
    case 'rw':
      return ['--bind', `${host.stage}/lower`, at];
  }
}

/** Every common client honours one of these; nothing is exempt (no NO_PROXY entries). */
export function egressEnv(caBundle: boolean): Record<string, string> {
  const url = `http://127.0.0.1:${EGRESS.port}`;
  const env: Record<string, string> = { NO_PROXY: '', no_proxy: '' };
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY']) {
    env[k] = url;
    env[k.toLowerCase()] = url;
  }
  if (caBundle) {
    for (const k of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO']) env[k] = EGRESS.ca;
  }
  return env;
}

// A pod without network: no retry can ever reach anything, yet npm retries every failed fetch,
// "not found" included, with 10 s and 60 s back-offs, and pip five times: give up at once instead.
const OFFLINE_ENV: Readonly<Record<string, string>> = { npm_config_fetch_retries: '0', PIP_RETRIES: '0' };

/** OFFLINE_ENV less whatever the policy's env sets itself (the policy wins). */
export function offlineEnv(rules: Rules): Record<string, string> {
  return Object.fromEntries(Object.entries(OFFLINE_ENV).filter(([k]) => !Object.hasOwn(rules.env, k)));
}

export function podEnv(rules: Rules, extra: Record<string, string>): Record<string, string> {
  return {
    PATH: POD_PATH,
    HOME: POD_HOME,
    USER: 'pod',
    LOGNAME: 'pod',
    SHELL: '/bin/sh',
    LANG: 'C.UTF-8',
    TMPDIR: '/tmp',
    TERM: 'xterm-256color',
    ...rules.env,
    ...extra,
  };
}

export function buildBwrapArgs(host: HostLayout, p: PodArgvInput): string[] {
  const a = [
    // A cgroup namespace for sure (--unshare-all only tries): the pod's /proc/self/cgroup then
    // names its own groups "/", and the bound group dirs (sysBinds) show as "/" in mountinfo.
    '--unshare-all',
    '--unshare-user',
    '--unshare-cgroup',
    '--disable-userns',
    '--die-with-parent',
    ...(p.tty && !p.live ? [] : ['--new-session']),
    '--clearenv',
    '--uid',
    String(POD_UID),
    '--gid',
    String(POD_UID),
    '--hostname',
    'pod',
    '--ro-bind',
    '/usr',
    '/usr',
  ];
  for (const [link, target] of Object.entries(host.usrLinks)) a.push('--symlink', target, link);
  a.push('--bind', `${host.stage}/tmp`, '/tmp', '--bind', `${host.stage}/home`, POD_HOME);
  // One bind for the synthetic files and the host copies (installPodEtc): bwrap re-reads the
  // mount table for every bind, so one per file cost ~4 ms a pod. The host dirs it shows (etcBinds)
  // are on its mount points already (preludeBinds; bwrap's binds are recursive). What lands on it
  // next goes onto the empty mount points it holds (a read-only /etc cannot get one made now).
  a.push('--ro-bind', `${host.etcDir}/${POD_ETC_DIR}`, '/etc');
  // bwrap copies each into its own tmpfs and closes the fd: the pod holds neither the pipe nor a host path.
  (p.etcData ?? []).forEach((dest, i) => a.push('--perms', '0444', '--ro-bind-data', String(FD.etc + i), dest));
  a.push(...workspaceBinds(host, p));
  p.rules.mounts.forEach((m, i) => {
    a.push(m.mode === 'rw' ? '--bind' : '--ro-bind', `${host.stage}/mnt/${i}`, m.path);
  });
  let command = p.command;
  let env = { ...offlineEnv(p.rules), ...p.env };
  if (p.tty && !p.live) {
    a.push(...ttyArgs(host));
    command = [PODTTY, '--', ...command];
  }
  if (p.warm) {
    if (!host.podwait) throw new Error('a warm pod needs clawpod-podwait');
    a.push('--ro-bind', host.podwait, PODWAIT);
    command = [PODWAIT, String(FD.channel)];
  }
  if (p.live) {
    a.push('--ro-bind', host.executor, EXECUTOR);
    command = [EXECUTOR, String(FD.channel), ...(p.cpus ? [p.cpus.list] : [])];
  }
  if (p.egress) {
    a.push('--ro-bind', host.forwarder, EGRESS.forwarder, '--bind', p.egress.socketPath, EGRESS.socket);
    if (p.egress.caBundle) a.push('--ro-bind', p.egress.caBundle, EGRESS.ca);
    command = [EGRESS.forwarder, String(EGRESS.port), EGRESS.socket, ...(p.live ? ['--pass-fd', String(FD.channel)] : []), '--', ...command];
    env = { ...egressEnv(Boolean(p.egress.caBundle)), ...p.env };
  }
  // Last, as they bring mounts beneath them: bwrap re-reads the whole mount table at every bind,
  // so every bind before them reads fewer lines. (No other mount may lie under /proc, /dev or
  // /sys: policy/normalize.ts RESERVED_POD_PATHS.)
  // /dev is the prelude's (native/podinit.c setup_dev: bwrap's --dev set, its nodes bound from the
  // host), bound whole and read-only: /dev/shm is the capped stage's, /dev/pts the pod's own devpts
  // instance (capped at 64 ptys). bwrap's --dev would re-read the mount table for each node.
  a.push('--proc', '/proc', '--dev-bind', `${host.stage}/dev`, '/dev', '--remount-ro', '/dev');
  a.push(...sysBinds(p));
  a.push('--remount-ro', '/');
  const cwd = podWorkspaceDir(p.rules, p.workspace);
  a.push('--chdir', cwd);
  for (const [k, v] of Object.entries({ ...podEnv(p.rules, env), PWD: cwd })) a.push('--setenv', k, v);
  a.push('--seccomp', String(FD.seccomp));
  return [...a, '--', ...command];
}

/**
 * A pod with a terminal: its stdio is a pty of its own (native/pty.c), never the user's, so
 * bwrap's --new-session (which keeps a pod from pushing keystrokes into the user's terminal with
 * TIOCSTI) is left out: it would take the pod off its controlling terminal and job control with
 * it. Everything else stays (seccomp still refuses TIOCSTI, TIOCSETD, TIOCSCTTY...). The command
 * starts behind clawpod-podtty, which makes it the terminal's foreground group, so Ctrl-C
 * reaches it and not the prelude (for which a signal means: stop the pod).
 */
function ttyArgs(host: HostLayout): string[] {
  if (!host.podtty) throw new Error('a pod with a terminal needs clawpod-podtty');
  return ['--ro-bind', host.podtty, PODTTY];
}

/** Host /etc files a pod gets a read-only copy of (installPodFiles), relative to /etc: a fixed
 *  list of public tables (openssl's config, services, protocols, MIME types, the OS name, the
 *  dynamic loader's cache, the time zone) that self-signed certificates, getservbyname and
 *  friends need. Nothing else of the host's /etc. Copies, not binds: bwrap re-reads the mount
 *  table for every bind. localtime is a regular file as its bind was (a link would break the
 *  bind of a live older clawpod onto it). */
export const HOST_ETC_COPIES: readonly string[] = ['ssl/openssl.cnf', 'services', 'protocols', 'mime.types', 'os-release', 'ld.so.cache', 'localtime'];
/** The pod's /etc, assembled under etcDir (installPodEtc) and bound read-only as a whole. */
export const POD_ETC_DIR = 'root';
/** The only names a pod's own /etc files (--ro-bind-data, see podEtcFiles) may have. */
export const ETC_DATA_NAMES: readonly string[] = ['gitconfig', 'npmrc'];
/** Files bound onto the pod's /etc after it, relative to /etc, besides the host's etcBinds. */
export const ETC_FILE_MOUNTS: readonly string[] = [...ETC_DATA_NAMES, EGRESS.ca.replace(/^\/etc\//, '')];

// Name lookups: /etc/hosts only. A pod has no DNS server (its network namespace holds only lo,
// and with network allowed it goes through the proxy, which resolves for it), and glibc's
// default "dns" answers EAI_AGAIN, which npm and pip retry for a minute: "files" alone makes
// any other name fail at once as not found (EAI_NONAME, ENOTFOUND).
const NSSWITCH = ['passwd', 'group', 'shadow', 'gshadow', 'hosts', 'networks', 'protocols', 'services', 'ethers', 'rpc', 'netgroup']
  .map((db) => `${db}: files\n`)
  .join('');

/** The synthetic /etc: only the pod user, no host accounts, no host names, no DNS. */
export function syntheticEtc(): { passwd: string; group: string; hosts: string; 'nsswitch.conf': string } {
  return {
    'nsswitch.conf': NSSWITCH,
    passwd: `root:x:0:0:root:/root:/usr/sbin/nologin\npod:x:${POD_UID}:${POD_UID}:clawpod pod:${POD_HOME}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\npod:x:${POD_UID}:\nnogroup:x:65534:\n`,
    hosts: '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tpod\n',
  };
}
