// The runs list: newest first, refreshed every two seconds while it is shown.
import { api, enc } from './api.js';
import { fill, fmtCost, fmtDuration, fmtTime, fmtTokens, h, oneLine, runDuration, runWhat, statusBadge } from './dom.js';

const POLL_MS = 2000;
const STATUSES = ['', 'queued', 'running', 'done', 'failed', 'killed', 'timeout', 'cancelled', 'interrupted'];
let filter = '';

export function runsView(root) {
  const body = h('tbody');
  const note = h('p', { class: 'muted', role: 'status' });
  const select = h(
    'select',
    { name: 'status', 'aria-label': 'status', onchange: () => ((filter = select.value), refresh()) },
    STATUSES.map((s) => h('option', { value: s, selected: s === filter }, s || 'all statuses')),
  );
  fill(
    root,
    h('div', { class: 'toolbar' }, h('h1', {}, 'Runs'), h('span', { class: 'spacer' }), select, h('a', { class: 'button', href: '#/new' }, 'Start a run')),
    h(
      'div',
      { class: 'scroll-x' },
      h(
        'table',
        { class: 'runs' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Status', 'Run', 'What', 'Started', 'Duration', 'Tokens', 'Cost', 'Changes', 'Outbound'].map((t) => h('th', {}, t)),
          ),
        ),
        body,
      ),
    ),
    note,
  );
  let last = '';
  let timer = 0;
  let alive = true;
  async function refresh() {
    clearTimeout(timer);
    try {
      const q = `/v1/runs?limit=100${filter ? `&status=${enc(filter)}` : ''}`;
      const { runs } = await api.getJson(q);
      const key = JSON.stringify(runs);
      // Unchanged rows are left alone (a reader's selection stays) unless a clock is running.
      if (key !== last || runs.some((r) => r.status === 'running')) {
        last = key;
        fill(body, runs.map(row));
      }
      note.textContent = runs.length ? '' : filter ? `No ${filter} runs.` : 'No runs yet: start one from the Start page.';
      note.className = 'muted';
    } catch (e) {
      note.textContent = e.message;
      note.className = 'error';
    }
    if (alive) timer = setTimeout(refresh, POLL_MS);
  }
  refresh();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}

function row(run) {
  const link = `#/runs/${enc(run.id)}`;
  return h(
    'tr',
    { data: { run: run.id, status: run.status } },
    h('td', {}, statusBadge(run.status)),
    h('td', { class: 'mono nowrap' }, h('a', { href: link }, run.id)),
    h(
      'td',
      { class: 'what', title: oneLine(runWhat(run), 2000) },
      h('span', { class: `kind-tag kind-${run.kind === 'exec' ? 'exec' : 'task'}` }, run.kind === 'exec' ? '$' : 'task'),
      ' ',
      oneLine(runWhat(run), 80),
    ),
    h('td', { class: 'nowrap' }, fmtTime(run.startedAt)),
    h('td', { class: 'num' }, fmtDuration(runDuration(run))),
    h('td', { class: 'num' }, run.agent ? fmtTokens(run.agent.usage) : '–'),
    h('td', { class: 'num' }, fmtCost(run.costUsd)),
    h('td', { class: 'nowrap' }, changes(run)),
    h('td', { class: 'nowrap' }, outbound(run.outbound, true)),
  );
}

export function changes(run) {
  if (run.status === 'queued' || run.status === 'running') return h('span', { class: 'muted' }, '–');
  const n = Number(run.filesChanged) || 0;
  if (run.diffState === 'none' || (!n && run.diffState !== 'pending')) return h('span', { class: 'muted' }, 'none');
  return h('span', { class: `diff-${run.diffState}` }, `${n} file${n === 1 ? '' : 's'} · ${run.diffState}`);
}

/** Outbound calls: both counts in a run's facts; in the list, only the counts that are not 0. */
export function outbound(o, short = false) {
  if (!o || (!o.allowed && !o.denied)) return h('span', { class: 'muted' }, '–');
  const allowed = h('span', { class: 'ok' }, `${o.allowed} allowed`);
  const denied = h('span', { class: o.denied ? 'bad' : 'muted' }, `${o.denied} refused`);
  if (short && !o.denied) return allowed;
  if (short && !o.allowed) return denied;
  return h('span', {}, allowed, ' · ', denied);
}
