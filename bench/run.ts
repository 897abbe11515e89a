// `npm run bench`: every figure next to the baseline measured in the same run, written to
// bench/results.json as the DESIGN.md contract says.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditWriter } from '../src/audit/chain.js';
import { buildBwrapArgs } from '../src/pod/bwrap-argv.js';
import { installPodFiles } from '../src/pod/podfiles.js';
import { LivePod } from '../src/pod/live.js';
import { apiMetrics } from './api.js';
import { proxyMetrics } from './proxy.js';
import { warmMetrics } from './warm.js';
import { createBwrapBackend } from '../src/pod/bwrap.js';
import { probeHost } from '../src/pod/host.js';
import { PodState } from '../src/pod/podstate.js';
import { buildSeccompProgram } from '../src/pod/seccomp.js';
import type { PodSpec } from '../src/pod/types.js';
import type { Rules } from '../src/policy/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const metrics: Record<string, { value: number; unit: string }> = {};
const put = (name: string, value: number, unit: string) => {
  metrics[name] = { value: Math.round(value * 100) / 100, unit };
  process.stdout.write(`${name.padEnd(30)} ${metrics[name].value} ${unit}\n`);
};

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

function spawnWait(cmd: string, args: string[], opts: Parameters<typeof spawn>[2] = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: 'ignore', ...opts });
    c.on('error', reject);
    c.on('close', (code) => resolve(code ?? -1));
  });
}

async function timeN(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 3; i++) await fn(); // warm caches
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

const rules: Rules = {
  resources: { cpus: 1, memoryBytes: 512 << 20, pids: 256, timeoutMs: 60_000, diskBytes: 1 << 30 },
  workspace: 'overlay',
  mounts: [],
  network: { allow: [], deny: [], hosts: {} },
  secrets: [],
  env: {},
  tools: {},
  source: 'bench',
};

async function main() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-bench-'));
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-bench-ws-'));
  fs.chmodSync(ws, 0o755);
  fs.writeFileSync(path.join(ws, 'README.md'), '# bench\n');
  const host = probeHost(home);
  const backend = createBwrapBackend({ clawpodHome: home, host });
  const seccomp = buildSeccompProgram();

  put('bare_spawn_true_p50_ms', pct(await timeN(40, () => spawnWait('/bin/true', [])), 50), 'ms');
  // The floor under any Node CLI on this machine, for reading cli_exec_true_p50_ms.
  put('node_start_p50_ms', pct(await timeN(15, () => spawnWait(process.execPath, ['-e', '0'])), 50), 'ms');

  // The same hardened bwrap command line (same binds, same seccomp fd), spawned directly as an
  // unprivileged uid without the prelude (no cgroups, no private mounts, no overlay, no
  // harvest): the floor our pods are measured against.
  const raw = fs.mkdtempSync(path.join('/run', 'clawpod-bench-raw-'));
  const state = new PodState(host.stateDir);
  const uid = state.allocateUid('bench-raw');
  // Every stage dir the command line binds (pts too): a missing one makes bwrap fail at once,
  // and a failing bwrap is no baseline (the exit status is checked below).
  for (const d of ['tmp', 'home', 'ws', 'shm', 'pts']) {
    fs.mkdirSync(path.join(raw, d));
    fs.chownSync(path.join(raw, d), uid, uid);
  }
  fs.chmodSync(raw, 0o755);
  const rawArgs = buildBwrapArgs(
    { ...host.layout, stage: raw },
    {
      rules,
      workspace: ws,
      command: ['/bin/true'],
      changesDir: null,
      cgroupProcs: [],
      cgroupInto: null,
      identity: null,
      env: {},
      sourceIds: {},
    },
  );
  const seccompFile = installPodFiles(host.stateDir, host.layout, seccomp);
  const rawOnce = () => {
    const fd = fs.openSync(seccompFile, 'r');
    const done = spawnWait(host.layout.bwrap, rawArgs, { uid, gid: uid, env: {}, stdio: ['ignore', 'ignore', 'inherit', fd] } as never);
    fs.closeSync(fd);
    return done.then((code) => {
      if (code !== 0) throw new Error(`raw bwrap exited ${code}`);
    });
  };
  const rawTimes = await timeN(40, rawOnce);
  put('bwrap_raw_true_p50_ms', pct(rawTimes, 50), 'ms');
  state.releaseUid(uid);
  fs.rmSync(raw, { recursive: true, force: true });

  const spec = (id: string, command: string[]): PodSpec => ({
    id,
    rules,
    workspace: ws,
    command,
    changesDir: path.join(home, 'cs', id),
    allowDegraded: false,
    stdio: 'pipe',
  });
  let n = 0;
  const podOnce = async (command: string[], forceTmpfsStage = false) => {
    const id = `bench-${process.pid}-${n++}`;
    const pod = await backend.start({ ...spec(id, command), forceTmpfsStage }, () => {});
    pod.stdout?.resume();
    pod.stderr?.resume();
    const o = await pod.wait();
    if (o.exitCode !== 0) throw new Error(`bench pod exited ${o.exitCode}`);
  };
  // Beside it, the stage as it was before issue 8 (a tmpfs, charged to the pod's memory): what the
  // disk stage (an ext4 image on a loop device, the default as root) costs at pod start. The two
  // alternate, so a change in the machine's load weighs on both alike.
  const podTimes: number[] = [];
  const tmpfsTimes: number[] = [];
  await timeN(100, async () => {
    let t = performance.now();
    await podOnce(['/bin/true']);
    podTimes.push(performance.now() - t);
    t = performance.now();
    await podOnce(['/bin/true'], true);
    tmpfsTimes.push(performance.now() - t);
  });
  podTimes.splice(0, 3);
  tmpfsTimes.splice(0, 3);
  put('pod_start_true_p50_ms', pct(podTimes, 50), 'ms');
  put('pod_start_true_p99_ms', pct(podTimes, 99), 'ms');
  put('pod_start_tmpfs_true_p50_ms', pct(tmpfsTimes, 50), 'ms');

  const live = await LivePod.start(backend, { ...spec(`bench-live-${process.pid}`, []), changesDir: null }, () => {});
  const warm = await timeN(100, async () => {
    const r = await live.exec(['/bin/true']);
    if (r.exitCode !== 0) throw new Error('warm exec failed');
  });
  put('pod_exec_warm_p50_ms', pct(warm, 50), 'ms');
  await live.close();

  // A warm pod (serve --warm) taken to run /bin/true: beside bare_spawn and pod_start above.
  await warmMetrics(put, backend, spec, (xs) => pct(xs, 50));

  const cliEnv = { ...process.env, CLAWPOD_HOME: home };
  const cliTimes = await timeN(20, () =>
    spawnWait(process.execPath, [path.join(ROOT, 'bin', 'clawpod'), 'exec', '--workspace', ws, '--', 'true'], { env: cliEnv }),
  );
  put('cli_exec_true_p50_ms', pct(cliTimes, 50), 'ms');

  const t0 = performance.now();
  await Promise.all(Array.from({ length: 50 }, () => podOnce(['/bin/true'])));
  put('pods_concurrent_50_wall_ms', performance.now() - t0, 'ms');
  put('pod_rss_mib', await podMemory(backend, spec), 'MiB');

  await proxyMetrics(put);
  await apiMetrics(put, ROOT);

  const auditPath = path.join(home, 'bench-audit.jsonl');
  const ta = performance.now();
  const w = AuditWriter.create(auditPath, 'r-bench');
  for (let i = 0; i < 50_000; i++) w.append('tool.call', { i, tool: 'bash', args: { command: 'ls -la /workspace' } });
  w.close(); // fsync: the figure is for durable events
  put('audit_append_per_s', 50_000 / ((performance.now() - ta) / 1000), 'events/s');

  const ratios = {
    pod_start_vs_bwrap_raw: metrics.pod_start_true_p50_ms.value / metrics.bwrap_raw_true_p50_ms.value,
    pod_start_vs_tmpfs_stage: metrics.pod_start_true_p50_ms.value / metrics.pod_start_tmpfs_true_p50_ms.value,
    bwrap_raw_vs_bare: metrics.bwrap_raw_true_p50_ms.value / metrics.bare_spawn_true_p50_ms.value,
    warm_acquire_vs_bare: metrics.warm_acquire_p50_ms.value / metrics.bare_spawn_true_p50_ms.value,
    warm_acquire_vs_pod_start: metrics.warm_acquire_p50_ms.value / metrics.pod_start_true_p50_ms.value,
    cli_exec_vs_node_start: metrics.cli_exec_true_p50_ms.value / metrics.node_start_p50_ms.value,
    api_exec_cold_vs_cli_exec: metrics.api_exec_true_cold_p50_ms.value / metrics.cli_exec_true_p50_ms.value,
  };
  for (const [k, v] of Object.entries(ratios)) process.stdout.write(`${k.padEnd(30)} ${v.toFixed(2)}x\n`);
  const machine = `${os.type()} ${os.release()} ${os.arch()}, ${os.cpus().length} cpu ${os.cpus()[0]?.model ?? ''}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, load ${os.loadavg()[0].toFixed(2)}`;
  fs.mkdirSync(path.join(ROOT, 'bench'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, 'bench', 'results.json'), `${JSON.stringify({ machine, metrics, ratios }, null, 2)}\n`);
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(ws, { recursive: true, force: true });
}

/** Host memory per live pod: proportional set size of every process in 50 sleeping pods, plus
 *  what supervising them added to this (clawpod) process's resident set. */
async function podMemory(backend: ReturnType<typeof createBwrapBackend>, spec: (id: string, c: string[]) => PodSpec): Promise<number> {
  const rssBefore = process.memoryUsage.rss();
  const pods = await Promise.all(Array.from({ length: 50 }, (_, i) => backend.start(spec(`bench-mem-${process.pid}-${i}`, ['/bin/sleep', '30']), () => {})));
  const ids = new Set(pods.map((p) => p.id));
  let pss = 0;
  for (let tries = 0; tries < 100; tries++) {
    const procs = podProcesses(ids);
    if (procs.commands >= 50) {
      pss = procs.pssKiB + Math.max(0, process.memoryUsage.rss() - rssBefore) / 1024;
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const p of pods) p.stop('bench');
  await Promise.all(pods.map((p) => p.wait()));
  return pss / 1024 / 50;
}

function podProcesses(ids: Set<string>): { commands: number; pssKiB: number } {
  let commands = 0;
  let pssKiB = 0;
  for (const pid of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const cg = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const mine = [...ids].some((id) => cg.includes(id) || cmd.includes(id));
      if (!mine) continue;
      if (cmd.startsWith('/bin/sleep')) commands++;
      const m = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+)/m);
      pssKiB += m ? Number(m[1]) : 0;
    } catch {
      /* exited */
    }
  }
  return { commands, pssKiB };
}

await main();
