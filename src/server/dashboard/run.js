// One run: its facts, and tabs for the live view, the diff (apply, discard), the audit trail
// (with its verification) and its policy in plain words. The event stream keeps running while
// another tab is shown; the facts refresh while the run is running and once it ends.
import { api, enc, readEvents } from './api.js';
import { fill, fmtCost, fmtCount, fmtDuration, fmtTime, fmtTokens, h, oneLine, plain, runDuration, runWhat, statusBadge } from './dom.js';
import { LiveLog } from './live.js';
import { auditPanel, diffPanel, policyPanel } from './review.js';
import { changes, outbound } from './runs.js';

const TABS = [
  ['live', 'Live'],
  ['diff', 'Diff'],
  ['audit', 'Audit'],
  ['policy', 'Policy'],
];
const ACTIVE = new Set(['queued', 'running']);

export function runView(root, { id, tab }) {
  const ctl = new AbortController();
  const state = { id, run: null, tab: TABS.some(([t]) => t === tab) ? tab : 'live', loaded: new Set() };
  const title = h('div', { class: 'toolbar' });
  const facts = h('div', { class: 'facts' });
  const message = h('p', { class: 'muted', role: 'status' });
  const tabs = h('nav', { class: 'tabs', role: 'tablist' });
  const logEl = h('div', { class: 'log', 'aria-label': 'live events' });
  const panels = {
    live: h('div', { class: 'panel' }, h('div', { class: 'stream-state muted' }), logEl, h('div', { class: 'answer', hidden: true })),
    diff: h('div', { class: 'panel' }),
    audit: h('div', { class: 'panel' }),
    policy: h('div', { class: 'panel' }),
  };
  fill(root, h('p', { class: 'crumbs' }, h('a', { href: '#/runs' }, '← Runs')), title, message, facts, tabs, Object.values(panels));
  const log = new LiveLog(logEl, id);

  const select = (t) => {
    state.tab = t;
    history.replaceState(null, '', `#/runs/${enc(id)}${t === 'live' ? '' : `/${t}`}`);
    drawTabs();
    for (const [k, p] of Object.entries(panels)) p.hidden = k !== t;
    if (!state.loaded.has(t) && state.run) loadTab(t);
  };
  const drawTabs = () =>
    fill(
      tabs,
      TABS.map(([t, label]) =>
        h(
          'button',
          {
            type: 'button',
            role: 'tab',
            class: t === state.tab ? 'tab active' : 'tab',
            'aria-selected': String(t === state.tab),
            data: { tab: t },
            onclick: () => select(t),
          },
          label,
          t === 'diff' && state.run?.diffState === 'pending' ? h('span', { class: 'pill' }, String(state.run.filesChanged ?? '')) : null,
        ),
      ),
    );
  const loadTab = (t) => {
    state.loaded.add(t);
    const again = () => refresh().then(() => loadTab(t));
    if (t === 'diff') diffPanel(panels.diff, state.run, again);
    if (t === 'audit') auditPanel(panels.audit, state.run);
    if (t === 'policy') policyPanel(panels.policy, state.run);
  };

  let timer = 0;
  async function refresh() {
    clearTimeout(timer);
    try {
      state.run = await api.getJson(`/v1/runs/${enc(id)}`, { signal: ctl.signal });
      // The page follows the log's end while the run is live, not while an ended run replays.
      log.follow = ACTIVE.has(state.run.status);
      message.textContent = '';
      drawHeader(title, state.run, refresh);
      drawFacts(facts, state.run);
      drawTabs();
      if (!state.loaded.has(state.tab)) loadTab(state.tab);
      drawAnswer(panels.live.querySelector('.answer'), state.run);
    } catch (e) {
      if (e.name === 'AbortError') return;
      message.textContent = e.message;
      message.className = 'error';
    }
    if (!ctl.signal.aborted && (!state.run || ACTIVE.has(state.run.status))) timer = setTimeout(refresh, 2000);
  }

  // A run that ends changes its diff and audit: tabs loaded before are loaded again.
  const ended = () => {
    const again = [...state.loaded].filter((t) => t !== 'live');
    for (const t of again) state.loaded.delete(t);
    refresh().then(() => {
      for (const t of again) if (!state.loaded.has(t)) loadTab(t);
    });
  };
  follow(id, log, panels.live.querySelector('.stream-state'), ctl.signal, ended);
  for (const [k, p] of Object.entries(panels)) p.hidden = k !== state.tab;
  state.loaded.add('live');
  refresh();
  return () => {
    ctl.abort();
    clearTimeout(timer);
  };
}

/** Reads the run's events until run.end; reconnects (the replay's seen lines are skipped). */
async function follow(id, log, stateEl, signal, ended) {
  for (let attempt = 0; !signal.aborted; attempt++) {
    stateEl.textContent = attempt ? 'reconnecting…' : 'connecting…';
    try {
      let first = true;
      await readEvents(
        `/v1/runs/${enc(id)}/events`,
        (type, data) => {
          if (first) stateEl.textContent = 'live';
          first = false;
          log.add(type, data);
        },
        signal,
      );
      if (log.ended || signal.aborted) break;
      // The stream ended without run.end: a run that will never have one (cancelled while
      // queued) says so in a status event; the record says whether it is still going.
      const run = await api.getJson(`/v1/runs/${enc(id)}`, { signal });
      if (!ACTIVE.has(run.status)) break;
    } catch (e) {
      if (signal.aborted) return;
      stateEl.textContent = `stream: ${e.message}`;
      if (e.status && e.status < 500) return;
    }
    await new Promise((r) => setTimeout(r, Math.min(5000, 500 * (attempt + 1))));
  }
  if (signal.aborted) return;
  stateEl.textContent = log.ended ? 'ended' : 'stream closed';
  ended();
  api.getJson(`/v1/runs/${enc(id)}/logs`, { signal }).then(
    (doc) => log.kept(doc),
    () => {},
  );
}

function drawHeader(el, run, refresh) {
  const cancel = ACTIVE.has(run.status)
    ? h(
        'button',
        {
          type: 'button',
          class: 'danger',
          onclick: async (e) => {
            e.target.disabled = true;
            try {
              await api.post(`/v1/runs/${enc(run.id)}/cancel`);
            } catch (err) {
              e.target.textContent = err.message;
            }
            refresh();
          },
        },
        'Cancel',
      )
    : null;
  fill(
    el,
    h('h1', { class: 'mono' }, run.id),
    statusBadge(run.status),
    h('span', { class: 'kind' }, run.kind === 'exec' ? 'command' : 'agent task'),
    h('span', { class: 'spacer' }),
    cancel,
  );
}

function fact(label, value, cls) {
  return [h('dt', {}, label), h('dd', { class: cls }, value)];
}

function drawFacts(el, run) {
  const a = run.agent;
  const rows = [
    fact(run.kind === 'exec' ? 'Command' : 'Task', h('span', { class: 'what-full' }, oneLine(runWhat(run), 1000)), 'mono'),
    fact('Workspace', `${plain(run.workspace)}${run.workspaceMode ? ` (${plain(run.workspaceMode)})` : ''}`, 'mono'),
    fact('Policy', plain(run.policySource ?? '–')),
    fact('Started', fmtTime(run.startedAt)),
    fact('Duration', fmtDuration(runDuration(run))),
    fact('Exit code', run.exitCode === null || run.exitCode === undefined ? '–' : String(run.exitCode)),
    run.limitHit ? fact('Limit hit', plain(run.limitHit), 'bad') : null,
    run.endReason ? fact('Why it ended', oneLine(run.endReason, 500)) : null,
    a ? fact('Model', plain(a.model ?? '–')) : null,
    a ? fact('Turns', a.turns === null ? '–' : String(a.turns)) : null,
    a ? fact('Tokens', fmtTokens(a.usage)) : null,
    a ? fact('Cost', fmtCost(run.costUsd)) : null,
    a ? fact('Tool calls', fmtCount(a.toolCalls)) : null,
    fact('Outbound', outbound(run.outbound)),
    fact('Changes', changes(run)),
    run.degraded?.length ? fact('Degraded guards', run.degraded.map((g) => plain(g)).join(', '), 'bad') : null,
    run.changesRefused?.length ? fact('Changes refused', run.changesRefused.map((g) => oneLine(g, 300)).join('; '), 'bad') : null,
  ];
  fill(el, h('dl', {}, rows));
}

function drawAnswer(el, run) {
  const answer = run.agent?.answer;
  if (!answer || ACTIVE.has(run.status)) {
    el.hidden = true;
    return;
  }
  fill(el, h('h3', {}, 'Answer'), h('pre', { class: 'model-text' }, plain(answer)));
  el.hidden = false;
}
