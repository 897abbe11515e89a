// The page's only way to make DOM: elements and text nodes, never markup. Everything a pod, a
// model or a file name can say reaches the page as text (textContent), so nothing it sends can
// become an element, an attribute or a script.

/** Attributes the page sets; anything else is a mistake in the page, not data. */
const ATTRS = new Set(['class', 'id', 'type', 'name', 'value', 'placeholder', 'title', 'for', 'role', 'rows', 'min', 'max', 'step', 'autocomplete']);

/**
 * h('div', { class: 'x', onclick: fn, hidden: true, data: { run: id } }, 'text', child, [more])
 * Children are nodes or strings (strings become text nodes); null, undefined and false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k === 'hidden' || k === 'disabled' || k === 'checked' || k === 'required' || k === 'selected' || k === 'open') el[k] = Boolean(v);
    else if (k === 'href') el.setAttribute('href', safeHref(v));
    else if (k === 'text') el.textContent = String(v);
    else if (ATTRS.has(k) || k.startsWith('aria-')) el.setAttribute(k, String(v));
    else throw new Error(`dom: unknown property ${k}`);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Links stay inside the page: a fragment route, never a scheme a string could choose. */
function safeHref(v) {
  const s = String(v);
  return s.startsWith('#') ? s : '#';
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Terminal control sequences (colours, cursor moves, titles) shown as what they mean to a reader:
// nothing. Other control characters but tab and newline become visible escapes.
const ANSI = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])/g;
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** Text a pod or a model wrote, made plain for display (still set with textContent). */
export function plain(s) {
  return String(s ?? '')
    .replace(/\r\n/g, '\n')
    .replace(ANSI, '')
    .replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** One line of at most n characters. */
export function oneLine(s, n = 200) {
  const t = plain(s).replace(/\s+/g, ' ').trim();
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

export function fmtDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function fmtTokens(usage) {
  if (!usage) return '–';
  return `${fmtCount(usage.inputTokens)} in / ${fmtCount(usage.outputTokens)} out`;
}

export function fmtCount(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

export function fmtCost(usd) {
  if (typeof usd !== 'number' || !Number.isFinite(usd)) return '–';
  if (usd === 0) return '$0';
  if (usd < 0.01) return `$${usd.toFixed(4)}`;
  if (usd < 1) return `$${usd.toFixed(3)}`;
  return `$${usd.toFixed(2)}`;
}

export function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A time as the reader's local clock, with the date when it is not today. */
export function fmtTime(iso) {
  if (typeof iso !== 'string') return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  const today = new Date().toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return today ? time : `${d.toLocaleDateString()} ${time}`;
}

/** A run's duration: its own when ended, the clock's while it runs. */
export function runDuration(run) {
  if (typeof run.durationMs === 'number') return run.durationMs;
  if (run.status === 'running' && run.startedAt) return Date.now() - new Date(run.startedAt).getTime();
  return null;
}

/** What a run does, in one line: its command, or its task. */
export function runWhat(run) {
  const cmd = Array.isArray(run.command) ? run.command.map(String) : [];
  if (run.kind === 'exec' && cmd[0] === 'sh' && cmd[1] === '-c' && cmd.length === 3) return cmd[2];
  return cmd.join(' ');
}

const STATUSES = new Set(['queued', 'running', 'done', 'failed', 'killed', 'timeout', 'cancelled', 'interrupted']);

export function statusBadge(status) {
  const s = String(status ?? 'unknown');
  return h('span', { class: `badge status-${STATUSES.has(s) ? s : 'unknown'}` }, s);
}
