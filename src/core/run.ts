// `clawpod run "TASK"`: the agent on the host, every tool in one live pod for the task's whole
// life, every step in the audit log, the workspace changes left as a diff like exec's.
import fs from 'node:fs';
import path from 'node:path';
import { AuditWriter } from '../audit/chain.js';
import { runAgent, type AgentEvent, type AgentOutcome } from '../agent/loop.js';
import { resolveModel, ModelChoiceError } from '../agent/providers/registry.js';
import { discoverSkills, skillMounts, skillsPrompt } from '../agent/skills.js';
import { createTools, filterTools } from '../agent/tools/index.js';
import { LivePod } from '../pod/live.js';
import { podWorkspaceDir } from '../pod/workspace-at.js';
import type { PodEvent } from '../pod/types.js';
import type { Provider } from '../agent/types.js';
import type { ProxyEvent } from '../proxy/types.js';
import { newRunId } from '../store/runs.js';
import type { Context } from './context.js';
import { bufferRedactor, redactingStream, startEgress, type RunningEgress } from './egress.js';
import { UserError } from './errors.js';
import { auditMaxBytes, chainHead, observeEvent, prepareExec, recordChanges, snapshotWorkspace } from './exec.js';
import { refusalTally } from './refused.js';
import type { Narrowing } from './narrow.js';
import { renderTaskEvent, taskSummary } from './run-view.js';
import { askApproval, podStderrStream } from './terminal.js';

export interface RunOptions {
  policy?: string;
  workspace?: string;
  backend?: string;
  model?: string;
  task: string;
  allowDegraded: boolean;
  cwd: string;
  maxTurns?: number;
  maxTokens?: number;
  env?: NodeJS.ProcessEnv;
  /** A named memory: $CLAWPOD_HOME/memory/NAME, read-write at /memory for this task only. */
  memory?: string;
  /** --at-host-path: the workspace at its own host path instead of /workspace. */
  atHostPath?: boolean;
  narrow?: Narrowing;
  removeIfUnchanged?: boolean;
  /** A provider chosen by the caller (the offline demo's replay) instead of --model. */
  provider?: { provider: Provider; model: string; providerName: string };
}

const SYSTEM = `You are clawpod, a careful software agent. You act only through your tools, and every
tool runs inside a disposable sandbox ("pod"): the project is at /workspace (copy-on-write: your
changes are kept as a diff the user reviews), /tmp and your home are private, the system is
read-only, and the network is closed except for hosts the user's policy allows. Credentials you
are given appear as placeholders; the host fills them in only for the hosts they belong to.
Work in small verified steps, run the tests you write, and finish with a short summary.`;

/** The prompt, naming where the pod sees the project (/workspace, or its host path). */
const systemPrompt = (dir: string) => (dir === '/workspace' ? SYSTEM : SYSTEM.replace('the project is at /workspace', `the project is at ${dir}`));

async function projectContext(live: LivePod, dir: string): Promise<string> {
  // Read through the pod, so a CLAUDE.md symlinked at a host file shows nothing of the host.
  const parts: string[] = [];
  for (const f of ['CLAUDE.md', 'AGENTS.md']) {
    const r = await live.exec(['cat', `${dir}/${f}`], { timeoutMs: 5000, maxOutput: 64 * 1024 });
    if (r.exitCode === 0 && r.stdout.length) parts.push(`Project notes from ${f}:\n${r.stdout.toString('utf8')}`);
  }
  return parts.join('\n\n');
}

function memoryDir(ctx: Context, name: string): string {
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name)) throw new UserError(`memory name "${name}" must be lower-case letters, digits, - or _ (e.g. --memory project-notes)`);
  const dir = path.join(ctx.clawpodHome, 'memory', name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export async function runTask(ctx: Context, opts: RunOptions): Promise<{ run: string; exitCode: number; outcome: AgentOutcome }> {
  if (!opts.task.trim()) throw new UserError('no task given (usage: clawpod run "TASK")');
  const env = opts.env ?? ctx.env;
  const { rules, workspace, backend, degraded, plan, settings } = await prepareExec(ctx, { ...opts, command: ['(agent)'], stdio: 'pipe' });
  let model: ReturnType<typeof resolveModel>;
  try { model = opts.provider ?? resolveModel(opts.model, env); } catch (e) {
    if (e instanceof ModelChoiceError) throw new UserError(e.message);
    throw e;
  }
  const memory = opts.memory ? memoryDir(ctx, opts.memory) : null;
  const { skills } = discoverSkills({ userDir: path.join(ctx.clawpodHome, 'skills'), workspace, rules });
  // Memory and skills live under $CLAWPOD_HOME, which no policy mount may reach: clawpod adds
  // them itself (skills read-only), each checked by its own module.
  if (memory) rules.mounts = [...rules.mounts, { host: memory, path: '/memory', mode: 'rw' }];
  rules.mounts = [...rules.mounts, ...skillMounts(skills)];
  const id = newRunId();
  const dir = ctx.runDir(id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const changesDir = rules.workspace === 'overlay' && workspace ? path.join(dir, 'changes') : null;
  const auditPath = path.join(dir, 'audit.jsonl');
  let live: LivePod | null = null;
  // Fail closed, as for exec: once the log can record no more, the task stops acting (the
  // agent loop is aborted and its pod stopped), so nothing runs unrecorded.
  const auditFull = new AbortController();
  const audit = AuditWriter.create(auditPath, id, { redact: plan.redact, maxBytes: auditMaxBytes(ctx), onLimit: () => {
    auditFull.abort();
    live?.pod.stop('the audit log reached its size cap');
  } });
  const refused = refusalTally();
  const record = (e: PodEvent | ProxyEvent) => { observeEvent(refused, e); audit.append(e.type, e.data); };
  ctx.store().createRun({
    id, kind: 'run', status: 'running', command: [plan.redact(opts.task)], workspace: workspace ?? '', workspaceMode: rules.workspace,
    policySource: rules.source, backend: backend.name, pid: process.pid, auditPath, runDir: dir,
  });
  audit.append('run.start', { kind: 'run', memory: opts.memory ?? null, skills: skills.map((k) => k.name), task: opts.task, model: `${model.providerName}:${model.model}`, workspace, workspaceAt: podWorkspaceDir(rules, workspace), policy: rules.source, backend: backend.name, resources: rules.resources, settings: settings.keys });
  for (const e of degraded) audit.append(e.type, e.data);
  for (const reason of settings.dropped) audit.append('policy.deny', { reason });
  const podDir = podWorkspaceDir(rules, workspace);
  const manifest = snapshotWorkspace(dir, changesDir, workspace, podDir);
  process.stderr.write(`clawpod: run ${id} (${model.providerName}:${model.model})\n`);
  let egress: RunningEgress | null = null;
  const started = Date.now();
  try {
    if (plan.needed) egress = await startEgress(plan, rules, id, backend.egressPaths(id), record);
    live = await LivePod.start(backend, {
      id, rules, workspace, changesDir, allowDegraded: opts.allowDegraded, stdio: 'pipe', env: { ...plan.podEnv, ...settings.env }, etc: settings.etc, egress: egress?.egress,
    }, record);
    // Through the byte redactor, so a value split across two reads is still caught.
    live.pod.stderr?.pipe(redactingStream(plan.secrets)).pipe(podStderrStream()).pipe(process.stderr, { end: false });
    const notes = [await projectContext(live, podDir), memory ? `Your memory "${opts.memory}" is at /memory (read-write, kept between tasks that use it).` : '', skillsPrompt(skills)]
      .filter(Boolean).join('\n\n');
    const tools = filterTools(createTools({ workspace: podDir }), { allow: rules.tools.allow, deny: rules.tools.deny });
    const emit = (e: AgentEvent) => { toAudit(audit, e); renderTaskEvent(e, plan.redact); };
    // Second line of defence: no secret value reaches the model through a tool's output.
    const scrub = bufferRedactor(plan.secrets);
    const pod = live;
    const ops = { exec: async (argv: string[], o?: { timeoutMs?: number; maxOutput?: number }) => {
      const r = await pod.exec(argv, o);
      return { ...r, stdout: scrub(r.stdout), stderr: scrub(r.stderr) };
    } };
    const outcome = await runAgent(opts.task, {
      provider: model.provider, model: model.model, system: notes ? `${systemPrompt(podDir)}\n\n${notes}` : systemPrompt(podDir), tools, ops, emit,
      budgets: { maxTurns: opts.maxTurns ?? 50, maxTokens: opts.maxTokens ?? 2_000_000, deadline: started + rules.resources.timeoutMs },
      approveTools: rules.tools.approve, approve: askApproval, signal: auditFull.signal,
    });
    const closed = await live.close();
    await egress?.close();
    const filesChanged = recordChanges(audit, changesDir, workspace, manifest, plan.secrets, rules.ignore);
    // After the change set too: its file.write events may be what filled the log.
    const podEnd = !closed.limitHit && audit.limitReached ? { ...closed, limitHit: 'audit' as const } : closed;
    const status = outcome.reason === 'done' ? 'done' : outcome.reason === 'timeout' ? 'timeout' : outcome.reason === 'model_error' ? 'failed' : 'killed';
    const exitCode = outcome.reason === 'done' ? 0 : outcome.reason === 'timeout' ? 124 : 1;
    audit.append('run.end', { status, reason: outcome.reason, exitCode, turns: outcome.turns, usage: outcome.usage, toolCalls: outcome.toolCalls, filesChanged, limitHit: podEnd.limitHit });
    audit.close();
    ctx.store().updateRun(id, {
      status, endedAt: new Date().toISOString(), exitCode, limitHit: podEnd.limitHit,
      diffState: filesChanged > 0 ? 'pending' : 'none', filesChanged, summary: chainHead(audit),
    });
    process.stderr.write(taskSummary(ctx, id, outcome, Date.now() - started));
    const refusedLine = refused.line();
    if (refusedLine) process.stderr.write(`${refusedLine}\n`);
    return { run: id, exitCode, outcome };
  } catch (err) {
    if (live) { live.pod.stop('clawpod failed'); await live.pod.wait().catch(() => undefined); }
    await egress?.close();
    audit.append('run.end', { status: 'failed', exitCode: 125, error: (err as Error).message });
    audit.close();
    ctx.store().updateRun(id, { status: 'failed', endedAt: new Date().toISOString(), exitCode: 125, diffState: 'none', summary: chainHead(audit) });
    throw err;
  }
}

/** The contract's audit events for the agent's story (text deltas are not logged one by one). */
function toAudit(audit: AuditWriter, e: AgentEvent): void {
  switch (e.type) {
    case 'text': return;
    case 'model.request': audit.append('model.request', { turn: e.turn, messages: e.messages }); return;
    case 'model.response': audit.append('model.response', { turn: e.turn, stopReason: e.stopReason, inputTokens: e.usage.inputTokens, outputTokens: e.usage.outputTokens }); return;
    case 'model.error': audit.append('model.response', { turn: e.turn, error: e.error }); return;
    case 'tool.call': audit.append('tool.call', { id: e.id, tool: e.name, input: e.input }); return;
    case 'tool.result': audit.append('tool.result', { id: e.id, tool: e.name, isError: e.isError, bytes: Buffer.byteLength(e.content), durationMs: Math.round(e.durationMs) }); return;
    case 'policy.deny': audit.append('policy.deny', { tool: e.tool, reason: e.reason }); return;
  }
}
