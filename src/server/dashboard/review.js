// The review tabs of a run: its diff with apply and discard, its audit trail with the chain's
// verification, and its policy in plain words. A diff is the pod's own text: shown line by line
// as text, coloured by its first character only.
import { api, enc } from './api.js';
import { fill, fmtTime, h, oneLine, plain } from './dom.js';

/** Past this many lines the page shows the start of the diff and says where the rest is. */
const MAX_DIFF_LINES = 20_000;

export async function diffPanel(el, run, again) {
  fill(el, h('p', { class: 'muted' }, 'Loading the diff…'));
  let text;
  try {
    text = await api.getText(`/v1/runs/${enc(run.id)}/diff`);
  } catch (e) {
    fill(el, h('p', { class: 'error' }, e.message));
    return;
  }
  const result = h('p', { class: 'muted', role: 'status' });
  const actions = h('div', { class: 'actions' });
  const running = run.status === 'queued' || run.status === 'running';
  if (run.diffState === 'pending' && !running) {
    const apply = h('button', { type: 'button', class: 'primary', data: { action: 'apply' } }, 'Apply to workspace');
    const discard = h('button', { type: 'button', class: 'danger', data: { action: 'discard' } }, 'Discard');
    apply.addEventListener('click', () => act(run, 'apply', [apply, discard], result, again));
    // Discard throws the work away: it asks once more on the button itself.
    let armed = false;
    discard.addEventListener('click', () => {
      if (!armed) {
        armed = true;
        discard.textContent = 'Discard: click again to confirm';
        setTimeout(() => {
          armed = false;
          discard.textContent = 'Discard';
        }, 4000);
        return;
      }
      act(run, 'discard', [apply, discard], result, again);
    });
    fill(actions, apply, discard);
  } else {
    const why = running ? 'The run is still going: its changes can be reviewed once it ends.' : stateLine(run);
    fill(actions, h('span', { class: `diff-state diff-${run.diffState}` }, why));
  }
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const files = lines.filter((l) => l.startsWith('diff --git ')).length;
  const pre = h('pre', { class: 'diff' });
  for (const l of lines.slice(0, MAX_DIFF_LINES)) pre.appendChild(h('span', { class: diffClass(l) }, `${plain(l)}\n`));
  const cut =
    lines.length > MAX_DIFF_LINES
      ? h('p', { class: 'muted' }, `… ${lines.length - MAX_DIFF_LINES} more lines: clawpod runs diff ${run.id} shows them all`)
      : null;
  fill(
    el,
    h(
      'div',
      { class: 'toolbar' },
      h('h2', {}, 'Changes'),
      h('span', { class: 'muted' }, lines.length ? `${files} file${files === 1 ? '' : 's'}` : ''),
      h('span', { class: 'spacer' }),
      actions,
    ),
    result,
    lines.length ? pre : h('p', { class: 'muted' }, 'No changes.'),
    cut,
  );
}

function stateLine(run) {
  if (run.diffState === 'applied') return 'Applied to the workspace.';
  if (run.diffState === 'discarded') return 'Discarded.';
  return 'Nothing waiting for review.';
}

function diffClass(l) {
  if (l.startsWith('diff --git ')) return 'd-file';
  if (l.startsWith('+++ ') || l.startsWith('--- ') || /^(index |new file|deleted file|old mode|new mode|similarity|rename |Binary files)/.test(l))
    return 'd-meta';
  if (l.startsWith('@@')) return 'd-hunk';
  if (l.startsWith('+')) return 'd-add';
  if (l.startsWith('-')) return 'd-del';
  return 'd-ctx';
}

async function act(run, what, buttons, result, again) {
  for (const b of buttons) b.disabled = true;
  result.className = 'muted';
  result.textContent = what === 'apply' ? 'Applying…' : 'Discarding…';
  try {
    const answer = await api.post(`/v1/runs/${enc(run.id)}/${what}`);
    result.className = 'ok';
    result.textContent = answerLine(what, answer);
    await again();
  } catch (e) {
    result.className = 'error';
    result.textContent = e.message;
    for (const b of buttons) b.disabled = false;
  }
}

function answerLine(what, a) {
  const n = typeof a?.applied === 'number' ? a.applied : typeof a?.discarded === 'number' ? a.discarded : null;
  const msg = typeof a?.message === 'string' ? ` ${oneLine(a.message, 300)}` : '';
  return `${what === 'apply' ? 'Applied' : 'Discarded'}${n === null ? '' : ` ${n} file${n === 1 ? '' : 's'}`}.${msg}`;
}

export async function auditPanel(el, run) {
  const badge = h('span', { class: 'verify pending' }, 'verifying…');
  const body = h('tbody');
  fill(
    el,
    h('div', { class: 'toolbar' }, h('h2', {}, 'Audit trail'), badge),
    h(
      'table',
      { class: 'audit' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['#', 'Time', 'Event', 'Data'].map((t) => h('th', {}, t)),
        ),
      ),
      body,
    ),
  );
  api.getJson(`/v1/runs/${enc(run.id)}/audit/verify`).then(
    (v) => {
      badge.className = `verify ${v.ok ? 'ok' : 'bad'}`;
      badge.title = v.head ? `head ${plain(v.head)}` : '';
      badge.textContent = v.ok
        ? `✓ verified: ${v.events} events, head ${String(v.head ?? '').slice(0, 12)}`
        : `✗ does not verify: ${oneLine(v.error ?? 'unknown error', 300)}`;
    },
    (e) => {
      badge.className = 'verify bad';
      badge.textContent = `✗ could not verify: ${e.message}`;
    },
  );
  let text;
  try {
    text = await api.getText(`/v1/runs/${enc(run.id)}/audit`);
  } catch (e) {
    fill(body, h('tr', {}, h('td', { class: 'error' }, e.message)));
    return;
  }
  const rows = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      rows.push(h('tr', { class: 'bad' }, h('td', {}, '?'), h('td', {}), h('td', {}, 'not JSON'), h('td', { class: 'mono' }, oneLine(line, 300))));
      continue;
    }
    const data = JSON.stringify(e.data ?? {});
    rows.push(
      h(
        'tr',
        { class: `a-${/^[a-z.]+$/.test(String(e.type)) ? String(e.type).replace(/\./g, '-') : 'other'}` },
        h('td', { class: 'num' }, plain(e.seq)),
        h('td', { class: 'nowrap' }, fmtTime(e.ts)),
        h('td', { class: 'mono' }, plain(e.type)),
        h('td', { class: 'mono data', title: oneLine(data, 4000) }, oneLine(data, 240)),
      ),
    );
  }
  fill(body, rows);
}

/** The run's policy as the server explains it. */
export async function policyPanel(el, run) {
  const source = String(run.policySource ?? 'builtin:strict');
  const head = h('div', { class: 'toolbar' }, h('h2', {}, 'Policy'), h('span', { class: 'muted mono' }, plain(source)));
  // The API explains a policy by name or path, not a run's own copy: a named file is explained
  // by its name, as it is now; an inline one was not kept in a form the page can ask about.
  const named = /\/policies\/([A-Za-z0-9][A-Za-z0-9._-]{0,63})\.yaml$/.exec(source);
  const ask = source.startsWith('builtin:') || source.startsWith('/') ? (named ? named[1] : source) : null;
  if (!ask) {
    fill(
      el,
      head,
      h('p', { class: 'muted' }, `This run's policy (${plain(source)}) came with the run; its limits are in the run.start event of the Audit tab.`),
    );
    return;
  }
  fill(el, head, h('p', { class: 'muted' }, 'Loading the policy…'));
  fill(el, head, await explain(ask), named ? h('p', { class: 'muted' }, 'As the policy file is now.') : null);
}

/** POST /v1/policy/explain → a list of its lines (or the error, as a line). */
export async function explain(policy) {
  try {
    const { lines } = await api.post('/v1/policy/explain', { policy });
    return h(
      'ul',
      { class: 'policy-lines' },
      (lines ?? []).map((l) => {
        const s = plain(l).trim();
        const m = /^([A-Z][A-Za-z ]{1,30}):\s(.*)$/s.exec(s);
        return m ? h('li', { class: 'kv' }, h('strong', {}, m[1]), h('span', {}, m[2])) : h('li', {}, s);
      }),
    );
  } catch (e) {
    return h('p', { class: 'error' }, e.message);
  }
}
