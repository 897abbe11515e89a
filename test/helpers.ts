// Shared by the integration tests: run the real CLI, make throwaway homes and workspaces,
// and look for anything a pod left behind.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin', 'clawpod');
export const IS_ROOT = process.getuid?.() === 0;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  runId: string | null;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  home: string;
  timeoutMs?: number;
  /** Called with the child once it is running (to send it signals). */
  onSpawn?: (child: import('node:child_process').ChildProcess) => void;
  /** Run as this user (via runuser), for the unprivileged path. */
  asUser?: string;
}

/** Runs ./bin/clawpod with a private CLAWPOD_HOME; never throws on a non-zero exit. */
export function cli(args: string[], opts: CliOptions): Promise<CliResult> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...opts.env, CLAWPOD_HOME: opts.home };
  const [cmd, argv] = opts.asUser
    ? ['runuser', ['-u', opts.asUser, '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v ?? ''}`), process.execPath, BIN, ...args]]
    : [process.execPath, [BIN, ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd as string, argv as string[], { cwd: opts.cwd ?? workspace(), env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    opts.onSpawn?.(child);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const m = stderr.match(/clawpod: run (r-[\w-]+)/);
      resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : 128), stdout, stderr, runId: m ? m[1] : null });
    });
  });
}

const made: string[] = [];
// Test homes, workspaces and policies go when the test file's process ends.
process.on('exit', () => {
  for (const d of made) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* left for the OS */
    }
  }
});

export function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `clawpod-${prefix}-`));
  made.push(d);
  fs.chmodSync(d, 0o755);
  return d;
}

/** A workspace with the given files (relpath -> content). */
export function workspace(files: Record<string, string | Buffer> = {}): string {
  const ws = tmpDir('ws');
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
    fs.writeFileSync(path.join(ws, rel), content);
  }
  return ws;
}

export function policyFile(yaml: string): string {
  const f = path.join(tmpDir('policy'), 'policy.yaml');
  fs.writeFileSync(f, yaml);
  return f;
}

/** Everything of one run that must be gone once clawpod has exited (or been reaped). */
export function residue(runId: string, podUid: number | null): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const uid = Number(status.match(/^Uid:\s+(\d+)/m)?.[1]);
      const cgroup = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if ((podUid !== null && uid === podUid) || cgroup.includes(runId) || cmdline.includes(runId)) {
        found.push(`process ${pid} (${cmdline.replace(/\0/g, ' ').slice(0, 60)}) state ${status.match(/^State:\s+(.*)$/m)?.[1]}`);
      }
    } catch {
      /* exited while we looked */
    }
  }
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  if (mounts.includes(runId) || mounts.includes('clawpod-stage')) found.push('a mount of the pod is still visible on the host');
  for (const ctl of ['memory', 'cpu', 'pids', 'unified']) {
    if (fs.existsSync(`/sys/fs/cgroup/${ctl}/clawpod/${runId}`)) found.push(`cgroup ${ctl}/clawpod/${runId}`);
  }
  if (fs.existsSync(`/run/clawpod/pods/${runId}.json`)) found.push('live-pod record');
  if (podUid !== null && fs.existsSync(`/run/clawpod/uids/${podUid}`)) found.push(`uid lock ${podUid}`);
  for (const f of [`${runId}.sock`, `${runId}-ca.pem`]) {
    if (fs.existsSync(`/run/clawpod/egress/${f}`)) found.push(`egress file ${f}`);
  }
  return found;
}

/** The pod uid recorded in a run's audit log (exec.start). */
export function podUidOf(home: string, runId: string): number | null {
  const log = fs.readFileSync(path.join(home, 'runs', runId, 'audit.jsonl'), 'utf8');
  const start = log
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .find((e) => e.type === 'exec.start');
  return start?.data?.uid ?? null;
}

export function auditEvents(home: string, runId: string): { type: string; data: Record<string, unknown> }[] {
  return fs
    .readFileSync(path.join(home, 'runs', runId, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** Waits until fn() is true or the time is up; returns the last value. */
export async function eventually(fn: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return fn();
}

/** Creates (once) an unprivileged local user for the non-root tests. */
export function ensureUser(name: string): boolean {
  if (!IS_ROOT) return false;
  if (spawnSync('id', [name]).status === 0) return true;
  return spawnSync('useradd', ['-M', '-s', '/bin/sh', name]).status === 0;
}

// ---- escape probes (test/escape*.test.ts) ----

/** Bash prelude: `t NAME 'CMD'` runs CMD in a subshell and prints SUCCEEDED:NAME or FAILED:NAME. */
export const PROBE_PRELUDE = 't() { n=$1; shift; if ( eval "$*" ) >/dev/null 2>&1 </dev/null; then echo "SUCCEEDED:$n"; else echo "FAILED:$n"; fi; }\n';

export type Outcome = 'SUCCEEDED' | 'FAILED';

/** The outcomes a PROBE_PRELUDE script printed, by probe name. */
export function probeOutcomes(stdout: string): Record<string, Outcome> {
  const out: Record<string, Outcome> = {};
  for (const m of stdout.matchAll(/^(SUCCEEDED|FAILED):(\S+)$/gm)) out[m[2]] = m[1] as Outcome;
  return out;
}

/** The same probe script run on the host (as root, or as nobody): the control for a pod probe. */
export function onHost(
  script: string,
  opts: { cwd?: string; asNobody?: boolean; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const bash = ['bash', '-c', PROBE_PRELUDE + script];
  const argv = opts.asNobody ? ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', ...bash] : bash;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: opts.cwd ?? os.tmpdir(),
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, stdout, stderr });
    });
  });
}

export interface PodProbe extends CliResult {
  uid: number | null;
  out: Record<string, Outcome>;
}

/** Runs a PROBE_PRELUDE script in a pod through the CLI; throws if the run left any residue. */
export async function probePod(home: string, script: string, opts: { ws?: string; policy?: string; env?: Record<string, string> } = {}): Promise<PodProbe> {
  const ws = opts.ws ?? workspace();
  const args = ['exec', '--workspace', ws, ...(opts.policy ? ['--policy', opts.policy] : []), '--', 'bash', '-c', PROBE_PRELUDE + script];
  const r = await cli(args, { home, cwd: ws, env: opts.env });
  if (!r.runId) throw new Error(`no run id (exit ${r.code}): ${r.stderr}`);
  const runId = r.runId;
  const uid = podUidOf(home, runId);
  await eventually(() => residue(runId, uid).length === 0);
  const left = residue(runId, uid);
  if (left.length > 0) throw new Error(`run ${runId} left residue: ${left.join('; ')}`);
  return { ...r, uid, out: probeOutcomes(r.stdout) };
}
