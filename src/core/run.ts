// `clawpod run "TASK"`: the agent on the host, every tool in one live pod for the task's whole
// life, every step in the audit log, the workspace changes left as a diff like exec's.
import fs from 'node:fs';
import path from 'node:path';
import { runAgent, type AgentEvent, type AgentOutcome } from '../agent/loop.js';
import { resolveModel, ModelChoiceError } from '../agent/providers/registry.js';
import { discoverSkills, skillMounts, skillsPrompt } from '../agent/skills.js';
import { createTools, filterTools } from '../agent/tools/index.js';
import { LivePod } from '../pod/live.js';
import type { Provider } from '../agent/types.js';
import type { Context } from './context.js';
import { bufferRedactor } from './egress.js';
import { UserError } from './errors.js';
import { removeRunRecord } from './exec.js';
import type { RunIO } from './io.js';
import { LOG_CAP, openRun } from './lifecycle.js';
import { prepare, type PrepareOptions } from './prepare.js';

export interface TaskResult {
  run: string;
  exitCode: number;
  status: string;
  outcome: AgentOutcome;
  filesChanged: number;
  durationMs: number;
  /** --rm removed the run's record (it changed nothing). */
  removed: boolean;
}

export interface RunOptions extends PrepareOptions {
  model?: string;
  task: string;
  /** The face: events, approvals, interrupts. */
  io: RunIO;
  maxTurns?: number;
  maxTokens?: number;
  env?: NodeJS.ProcessEnv;
  /** A named memory: $CLAWPOD_HOME/memory/NAME, read-write at /memory for this task only. */
  memory?: string;
  /** --rm: drop the run's record and directory when it changed nothing. */
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

async function projectContext(live: LivePod, dir: string): Promise<{ name: string; text: string }[]> {
  // Read through the pod, so a CLAUDE.md symlinked at a host file shows nothing of the host.
  const found: { name: string; text: string }[] = [];
  for (const f of ['CLAUDE.md', 'AGENTS.md']) {
    const r = await live.exec(['cat', `${dir}/${f}`], { timeoutMs: 5000, maxOutput: 64 * 1024 });
    if (r.exitCode === 0 && r.stdout.length) found.push({ name: f, text: r.stdout.toString('utf8') });
  }
  return found;
}

function memoryDir(ctx: Context, name: string): string {
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name))
    throw new UserError(`memory name "${name}" must be lower-case letters, digits, - or _ (e.g. --memory-name project-notes)`);
  const dir = path.join(ctx.clawpodHome, 'memory', name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export async function runTask(ctx: Context, opts: RunOptions): Promise<TaskResult> {
  if (!opts.task.trim()) throw new UserError('no task given (usage: clawpod run "TASK")');
  const env = opts.env ?? ctx.env;
  const { io } = opts;
  const prepared = await prepare(ctx, opts);
  const { rules, workspace, plan } = prepared;
  let model: { provider: Provider; model: string; providerName: string };
  try {
    model = opts.provider ?? resolveModel(opts.model, env);
  } catch (e) {
    if (e instanceof ModelChoiceError) throw new UserError(e.message);
    throw e;
  }
  const memory = opts.memory ? memoryDir(ctx, opts.memory) : null;
  const { skills } = discoverSkills({ userDir: path.join(ctx.clawpodHome, 'skills'), workspace, rules });
  // Memory and skills live under $CLAWPOD_HOME, which no policy mount may reach: clawpod adds
  // them itself (skills read-only), each checked by its own module.
  if (memory) rules.mounts = [...rules.mounts, { host: memory, path: '/memory', mode: 'rw' }];
  rules.mounts = [...rules.mounts, ...skillMounts(skills)];
  // Fail closed, as for exec: once the log can record no more, the task stops acting (the
  // agent loop is aborted and its pod stopped), so nothing runs unrecorded.
  const stopLoop = new AbortController();
  const onInterrupt = () => stopLoop.abort();
  const run = await openRun(ctx, {
    kind: 'run',
    prepared,
    io,
    command: [opts.task],
    start: { memory: opts.memory ?? null, skills: skills.map((k) => k.name), task: opts.task, model: `${model.providerName}:${model.model}` },
    podOf: (p: LivePod) => p.pod,
    onAuditFull: () => stopLoop.abort(),
    startPod: async ({ id, changesDir, egress, beforeStart, record }) =>
      new LivePod(
        await prepared.backend.start(
          {
            id,
            rules,
            workspace,
            changesDir,
            allowDegraded: opts.allowDegraded,
            stdio: 'pipe',
            command: [],
            live: true,
            hold: true,
            env: { ...plan.podEnv, ...prepared.settings.env },
            etc: prepared.settings.etc,
            egress,
            beforeStart,
          },
          record,
        ),
        record,
      ),
  });
  const live = run.pod;
  const started = Date.now();
  const transcript = new Transcript(run.dir, plan.redact);
  try {
    // A live pod's stderr is the face's to show (the terminal prefixes and escapes it); kept too.
    // Its stdout is the executor's channel, read by LivePod alone: never relayed to the face.
    run.relayOutput({ ...live.pod, stdout: null }, { stdout: null });
    live.pod.go();
    io.notice(`clawpod: run ${run.id} (${model.providerName}:${model.model})`);
    // An interrupt that came while the pod was starting already fired: a listener added now
    // would never hear it, and the task would run to its end (as exec's untilStopped does).
    const onKill = () => live.pod.stop('stopped by the user');
    if (io.signal.aborted) onInterrupt();
    else io.signal.addEventListener('abort', onInterrupt, { once: true });
    if (io.kill?.aborted) onKill();
    else io.kill?.addEventListener('abort', onKill, { once: true });
    run.reapOthers();
    const loaded = await projectContext(live, run.podDir);
    run.emit({
      source: 'run',
      type: 'run.context',
      data: {
        claudeMd: loaded.map((f) => `${f.name} (workspace)`),
        memory: opts.memory ?? null,
        skills: skills.map((k) => ({ name: k.name, from: k.source })),
      },
    });
    const notes = [
      loaded.map((f) => `Project notes from ${f.name}:\n${f.text}`).join('\n\n'),
      memory ? `Your memory "${opts.memory}" is at /memory (read-write, kept between tasks that use it).` : '',
      skillsPrompt(skills),
    ]
      .filter(Boolean)
      .join('\n\n');
    const tools = filterTools(createTools({ workspace: run.podDir }), { allow: rules.tools.allow, deny: rules.tools.deny });
    // Second line of defence: no secret value reaches the model through a tool's output.
    const scrub = bufferRedactor(plan.secrets);
    const ops = {
      exec: async (argv: string[], o?: { timeoutMs?: number; maxOutput?: number }) => {
        const r = await live.exec(argv, o);
        return { ...r, stdout: scrub(r.stdout), stderr: scrub(r.stderr) };
      },
    };
    const outcome = await runAgent(opts.task, {
      provider: model.provider,
      model: model.model,
      system: notes ? `${systemPrompt(run.podDir)}\n\n${notes}` : systemPrompt(run.podDir),
      tools,
      ops,
      emit: (e: AgentEvent) => {
        transcript.add(e);
        run.emit({ source: 'agent', event: e });
      },
      budgets: { maxTurns: opts.maxTurns ?? 50, maxTokens: opts.maxTokens ?? 2_000_000, deadline: started + rules.resources.timeoutMs },
      approveTools: rules.tools.approve,
      approve: (tool, input) => io.approve({ tool, input }),
      signal: stopLoop.signal,
    });
    transcript.close(outcome.finalText);
    const closed = await live.close();
    const interrupted = io.signal.aborted;
    const refusedApprovals = (outcome as { refusedApprovals?: number }).refusedApprovals ?? 0;
    const ok = outcome.reason === 'done' && !interrupted && refusedApprovals === 0;
    const status = interrupted
      ? (io.interruptStatus ?? 'interrupted')
      : ok
        ? 'done'
        : outcome.reason === 'timeout'
          ? 'timeout'
          : outcome.reason === 'model_error' || outcome.reason === 'done'
            ? 'failed'
            : 'killed';
    const exitCode = interrupted ? 130 : ok ? 0 : outcome.reason === 'timeout' ? 124 : 1;
    const filesChanged = await run.end({
      status,
      exitCode,
      limitHit: closed.limitHit,
      data: {
        reason: interrupted ? 'interrupted' : outcome.reason,
        turns: outcome.turns,
        usage: outcome.usage,
        toolCalls: outcome.toolCalls,
        ...(refusedApprovals ? { refusedApprovals } : {}),
        ...(interrupted ? { stoppedBy: 'user' } : {}),
      },
    });
    const removed = Boolean(opts.removeIfUnchanged) && run.leftNoTrace(status, filesChanged);
    if (removed) removeRunRecord(ctx, run.id);
    return {
      run: run.id,
      exitCode,
      status,
      outcome,
      filesChanged,
      durationMs: Date.now() - started,
      removed,
    };
  } catch (err) {
    transcript.close(null);
    await run.fail(err);
    throw err;
  } finally {
    io.signal.removeEventListener('abort', onInterrupt);
  }
}

/** The agent's story kept with the run for `runs logs`: redacted, each tool output capped. */
class Transcript {
  private readonly fd: number;
  private open = true;
  constructor(
    private readonly dir: string,
    private readonly redact: (s: string) => string,
  ) {
    this.fd = fs.openSync(path.join(dir, 'transcript.jsonl'), 'wx', 0o600);
  }

  private bytes = 0;
  private cut = false;

  private line(o: Record<string, unknown>): void {
    if (!this.open || this.cut) return;
    const text = `${this.redact(JSON.stringify(o))}\n`;
    // Bounded like the pod's own logs: the model's and the pod's bytes never fill the host.
    this.bytes += Buffer.byteLength(text);
    const out = this.bytes > LOG_CAP ? `${JSON.stringify({ type: 'cut', reason: `the transcript reached ${LOG_CAP} bytes; the rest is not kept` })}\n` : text;
    if (this.bytes > LOG_CAP) this.cut = true;
    try {
      fs.writeSync(this.fd, out);
    } catch {
      /* a full disk loses the transcript, never the run */
    }
  }

  private text = '';

  add(e: AgentEvent): void {
    if (e.type === 'text') {
      this.text += e.delta;
      if (this.text.length > 64 * 1024) this.flushText();
      return;
    }
    this.flushText();
    if (e.type === 'tool.call') this.line({ type: 'tool.call', name: e.name, input: e.input });
    else if (e.type === 'tool.result')
      this.line({
        type: 'tool.result',
        name: e.name,
        isError: e.isError,
        content: e.content.slice(0, 16 * 1024),
        ...(e.content.length > 16 * 1024 ? { cut: e.content.length - 16 * 1024 } : {}),
      });
    else if (e.type === 'policy.deny') this.line({ type: 'policy.deny', tool: e.tool, reason: e.reason });
    else if (e.type === 'model.error') this.line({ type: 'model.error', error: e.error });
  }

  private flushText(): void {
    if (this.text) this.line({ type: 'text', text: this.text });
    this.text = '';
  }

  close(answer: string | null): void {
    if (!this.open) return;
    this.flushText();
    this.open = false;
    fs.closeSync(this.fd);
    if (answer !== null) {
      try {
        // The model's last word, bounded like everything else kept from a run.
        const text = Buffer.from(this.redact(answer));
        const kept =
          text.length > LOG_CAP ? Buffer.concat([text.subarray(0, LOG_CAP), Buffer.from(`\n[clawpod: ${text.length - LOG_CAP} more bytes not kept]\n`)]) : text;
        fs.writeFileSync(path.join(this.dir, 'answer.txt'), kept, { mode: 0o600, flag: 'wx' });
      } catch {
        /* as above */
      }
    }
  }
}
