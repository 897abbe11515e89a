// A run's live view: its audit chain (replayed from the first line, then live) and the live-only
// events between (pod output, the model's streamed text, tools' first output lines), as a log
// that grows without reload. Every string in it came from the run: it is only ever text.
import { fmtBytes, fmtDuration, h, oneLine, plain } from './dom.js';

/** Past this much pod output or model text in the page, the rest is counted, not shown. */
const MAX_TEXT = 512 * 1024;

export class LiveLog {
  constructor(el, runId) {
    this.el = el;
    this.runId = runId;
    this.lastSeq = 0;
    this.t0 = null;
    this.tail = null; // the block that output or text is appended to: { kind, el, pre? }
    this.tools = new Map();
    this.shown = 0;
    this.cut = 0;
    this.ended = false;
    this.sawOutput = false;
    /** What the live view was sent of each stream, to compare with the kept logs at the end. */
    this.seen = { stdout: '', stderr: '' };
    this.exitRow = null;
    this.follow = false;
  }

  /** One event of the stream. Audit lines already shown (a reconnect replays) are skipped. */
  add(type, data) {
    if (data && typeof data === 'object' && typeof data.seq === 'number' && typeof data.hash === 'string') {
      if (data.seq <= this.lastSeq) return;
      this.lastSeq = data.seq;
      return this.audit(data);
    }
    const d = data && typeof data === 'object' ? data : { text: String(data ?? '') };
    if (type === 'output') {
      const stream = d.stream === 'stderr' ? 'stderr' : 'stdout';
      this.sawOutput = true;
      if (this.seen[stream].length < 2 * MAX_TEXT) this.seen[stream] += String(d.text ?? '');
      return this.text('console', String(d.text ?? ''), stream);
    }
    if (type === 'text') return this.text('model', String(d.text ?? ''));
    if (type === 'tool.output') return this.toolOutput(d);
    if (type === 'notice') return this.line('notice', 'ℹ', plain(d.line));
    if (type === 'status') {
      // A reconnect's stream says the status again: a line only when it changed.
      const line = `status: ${plain(d.status)}${d.error ? ` (${oneLine(d.error)})` : ''}`;
      if (line === this.lastStatus) return;
      this.lastStatus = line;
      return this.line('status', '•', line);
    }
    this.line('other', '·', `${type} ${oneLine(JSON.stringify(d), 300)}`);
  }

  audit(e) {
    const d = e.data && typeof e.data === 'object' ? e.data : {};
    const t = this.offset(e.ts);
    switch (e.type) {
      case 'run.start':
        return this.line('run', '▶', `started on ${plain(d.backend)} with ${plain(d.policy)}, workspace ${plain(d.workspace)} (${plain(d.workspaceMode)})`, t);
      case 'exec.start':
        return this.line('exec', '$', Array.isArray(d.command) ? d.command.map((c) => plain(c)).join(' ') : '', t);
      case 'exec.exit': {
        const extra = [d.limitHit ? `limit ${plain(d.limitHit)}` : '', d.stoppedBy ? `stopped by ${plain(d.stoppedBy)}` : ''].filter(Boolean);
        this.line(
          d.exitCode === 0 ? 'exit-ok' : 'exit-bad',
          '⏎',
          `exit ${plain(d.exitCode)} after ${fmtDuration(d.durationMs)}${extra.length ? ` (${extra.join(', ')})` : ''}`,
          t,
        );
        this.exitRow = this.el.lastChild;
        return;
      }
      case 'model.request':
        this.tail = null;
        return this.line('model-meta', '◆', `model turn ${plain(d.turn)} (${plain(d.messages)} messages)`, t);
      case 'model.response':
        this.tail = null;
        if (d.error) return this.line('bad', '✗', `model error: ${oneLine(d.error, 500)}`, t);
        return this.line(
          'model-meta',
          '◇',
          `turn ${plain(d.turn)}: ${plain(d.stopReason)}, ${plain(d.inputTokens)} in / ${plain(d.outputTokens)} out tokens`,
          t,
        );
      case 'tool.call':
        return this.toolCall(d, t);
      case 'tool.result':
        return this.toolResult(d);
      case 'policy.deny':
        return this.line('deny', '✗', `denied${d.tool ? ` ${plain(d.tool)}` : ''}: ${oneLine(d.reason, 500)}`, t);
      case 'net.allow':
        if (d.terminated === true) return;
        return this.line(d.status >= 400 ? 'net-warn' : 'net-allow', '↗', `allowed ${net(d)}${d.status ? ` → ${plain(d.status)}` : ''}${count(d)}`, t);
      case 'net.deny':
        return this.line('net-deny', '⊘', `refused ${net(d)}${d.reason ? `: ${oneLine(d.reason, 300)}` : ''}${count(d)}`, t);
      case 'limit.hit':
        return this.line(
          'limit',
          '⚠',
          `limit hit: ${plain(d.cap)}${d.message ? ` — ${oneLine(d.message, 500)}` : d.detail ? ` — ${oneLine(d.detail, 500)}` : ''}`,
          t,
        );
      case 'file.write':
        return this.line('file', '✎', `${plain(d.path)} (${[plain(d.kind), fmtBytes(d.bytes)].filter(Boolean).join(', ')})`, t);
      case 'run.context':
        return this.line('notice', 'ℹ', contextText(d), t);
      case 'secret.use':
        return this.line('secret', '✱', `secret ${plain(d.name)} sent to ${plain(d.host)}`, t);
      case 'guard.degraded':
        return this.line('limit', '⚠', `guard degraded: ${plain(d.guard)}${d.reason ? ` — ${oneLine(d.reason, 300)}` : ''}`, t);
      case 'run.end':
        this.ended = true;
        this.tail = null;
        return this.line(
          d.status === 'done' ? 'end-ok' : 'end-bad',
          '■',
          `${plain(d.status)}${d.exitCode !== undefined && d.exitCode !== null ? `, exit ${plain(d.exitCode)}` : ''}${d.filesChanged ? `, ${plain(d.filesChanged)} file(s) changed` : ''}${d.limitHit ? `, limit ${plain(d.limitHit)}` : ''}`,
          t,
        );
      default:
        return this.line('other', '·', `${plain(e.type)} ${oneLine(JSON.stringify(d), 300)}`, t);
    }
  }

  offset(ts) {
    const ms = Date.parse(ts);
    if (Number.isNaN(ms)) return '';
    if (this.t0 === null) this.t0 = ms;
    return `+${((ms - this.t0) / 1000).toFixed(2)}s`;
  }

  /** One row of the log. */
  line(kind, icon, text, t = '') {
    this.tail = null;
    this.push(h('div', { class: `ev ev-${kind}` }, h('span', { class: 't' }, t), h('span', { class: 'icon' }, icon), h('span', { class: 'msg' }, text)));
  }

  /** Output and model text run on in one block until something else happens. */
  text(kind, s, stream = '') {
    if (!s) return;
    if (this.shown >= MAX_TEXT) {
      this.cut += s.length;
      this.cutNote();
      return;
    }
    const piece = plain(s).slice(0, MAX_TEXT - this.shown);
    this.shown += piece.length;
    if (!this.tail || this.tail.kind !== kind) {
      const pre = h('pre', { class: kind === 'console' ? 'console' : 'model-text' });
      this.tail = { kind, pre };
      this.push(h('div', { class: `ev ev-${kind}` }, h('span', { class: 't' }), h('span', { class: 'icon' }, kind === 'console' ? '▤' : '✦'), pre));
    }
    const pre = this.tail.pre;
    this.stick(() => pre.appendChild(stream === 'stderr' ? h('span', { class: 'stderr' }, piece) : document.createTextNode(piece)));
  }

  /** Once the run has ended, its kept logs (GET /v1/runs/ID/logs): output is live-only, so what
   *  the pod printed before this page connected (or all of it, for a run opened after its end)
   *  is only there. They go where the command's exit is, stdout then stderr, unless the live view
   *  already showed exactly what they hold. */
  kept(doc) {
    if (!doc) return;
    const same = ['stdout', 'stderr'].every((s) => (typeof doc[s] === 'string' ? doc[s] : '') === this.seen[s]);
    if (same) return;
    const parts = [];
    if (this.sawOutput)
      parts.push(h('p', { class: 'kept-note' }, 'The live view missed some output (printed before it connected); the run’s kept logs in full:'));
    for (const stream of ['stdout', 'stderr']) {
      const text = typeof doc[stream] === 'string' ? plain(doc[stream]).slice(0, MAX_TEXT) : '';
      if (text) parts.push(h('pre', { class: 'console', data: { stream } }, stream === 'stderr' ? h('span', { class: 'stderr' }, text) : text));
    }
    if (parts.length < (this.sawOutput ? 2 : 1)) return;
    const block = h('div', { class: 'ev ev-console ev-kept' }, h('span', { class: 't' }, 'logs'), h('span', { class: 'icon' }, '▤'), h('div', {}, parts));
    this.stick(() => this.el.insertBefore(block, this.exitRow && this.exitRow.parentNode === this.el ? this.exitRow : null));
  }

  cutNote() {
    if (!this.cutEl) {
      this.cutEl = h('div', { class: 'ev ev-notice' });
      this.push(this.cutEl);
    }
    this.cutEl.textContent = `… ${this.cut} more characters not shown here (clawpod runs logs ${this.runId} has them)`;
  }

  toolCard(id, tool) {
    let c = this.tools.get(id);
    if (c) return c;
    const name = h('span', { class: 'tool-name' }, plain(tool ?? 'tool'));
    const state = h('span', { class: 'tool-state running' }, 'running…');
    const input = h('pre', { class: 'tool-input', hidden: true });
    const output = h('pre', { class: 'tool-output', hidden: true });
    const el = h(
      'div',
      { class: 'ev ev-tool', data: { tool: String(id) } },
      h('div', { class: 'tool-head' }, h('span', { class: 'icon' }, '▸'), name, state),
      input,
      output,
    );
    c = { el, name, state, input, output };
    this.tools.set(id, c);
    this.tail = null;
    this.push(el);
    return c;
  }

  toolCall(d, t) {
    const c = this.toolCard(String(d.id ?? Math.random()), d.tool);
    c.name.textContent = plain(d.tool ?? 'tool');
    c.state.textContent = `${t} running…`;
    const input = d.input && typeof d.input === 'object' ? d.input : {};
    const text = typeof input.command === 'string' && Object.keys(input).length <= 2 ? plain(input.command) : plain(JSON.stringify(input, null, 2));
    c.input.textContent = text.length > 4000 ? `${text.slice(0, 4000)}\n… (${text.length - 4000} more characters)` : text;
    c.input.hidden = false;
  }

  toolResult(d) {
    const c = this.toolCard(String(d.id), d.tool);
    c.state.className = `tool-state ${d.isError ? 'bad' : 'ok'}`;
    c.state.textContent = `${d.isError ? '✗ error' : '✓'} ${fmtDuration(d.durationMs)}${typeof d.bytes === 'number' ? `, ${fmtBytes(d.bytes)} of output` : ''}`;
  }

  toolOutput(d) {
    const c = this.toolCard(String(d.id), d.tool);
    const lines = plain(d.text ?? '').split('\n');
    const head = lines.slice(0, 12).join('\n');
    this.stick(() => {
      c.output.textContent = lines.length > 12 ? `${head}\n… ${lines.length - 12} more lines` : head;
      c.output.hidden = false;
    });
    if (d.isError) c.output.classList.add('bad');
  }

  /** Appends and keeps the log scrolled to its end when the reader was at the end. */
  push(node) {
    this.stick(() => this.el.appendChild(node));
  }

  stick(change) {
    const page = document.scrollingElement ?? document.documentElement;
    const atEnd = this.follow && page.scrollHeight - page.scrollTop - page.clientHeight < 60;
    change();
    if (atEnd) page.scrollTop = page.scrollHeight;
  }
}

/** What the agent was given to read at start (CLAUDE.md files, memory, skills), in one line. */
function contextText(d) {
  const name = (x) => (typeof x === 'string' ? plain(x) : x && typeof x === 'object' ? `${plain(x.name)}${x.from ? ` (${plain(x.from)})` : ''}` : '');
  const items = [];
  if (Array.isArray(d.claudeMd) && d.claudeMd.length) items.push(d.claudeMd.map(name).join(', '));
  if (typeof d.memory === 'string' && d.memory) items.push(`memory "${plain(d.memory)}"`);
  if (Array.isArray(d.skills) && d.skills.length) items.push(`skills: ${d.skills.map(name).join(', ')}`);
  return `context: ${items.length ? items.join('; ') : 'none (no CLAUDE.md, memory or skills)'}`;
}

function net(d) {
  const where = `${plain(d.host || '?')}${d.port ? `:${plain(d.port)}` : ''}`;
  return d.method ? `${plain(d.method)} ${where}` : where;
}

function count(d) {
  return Number.isSafeInteger(d.count) && d.count > 1 ? ` (×${d.count})` : '';
}
