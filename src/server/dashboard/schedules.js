// Schedules: what fires when, and a form to make one (a cron line, an interval or one time, and
// the run it starts, built with the same fields as the Start page).
import { api, enc } from './api.js';
import { fill, fmtTime, h, oneLine, plain, runWhat } from './dom.js';
import { field, runRequestFields } from './forms.js';

export function schedulesView(root) {
  const body = h('tbody');
  const note = h('p', { class: 'muted', role: 'status' });
  const refresh = async () => {
    try {
      const { schedules } = await api.getJson('/v1/schedules');
      fill(
        body,
        schedules.map((s) => row(s, refresh, note)),
      );
      note.className = 'muted';
      note.textContent = schedules.length ? '' : 'No schedules yet.';
    } catch (e) {
      note.className = 'error';
      note.textContent = e.message;
    }
  };
  fill(
    root,
    h('h1', {}, 'Schedules'),
    h(
      'table',
      { class: 'schedules' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Name', 'When', 'Runs', 'Missed', 'Overlap', 'Next', 'Last', ''].map((t) => h('th', {}, t)),
        ),
      ),
      body,
    ),
    note,
    createForm(refresh),
  );
  refresh();
  const timer = setInterval(refresh, 10_000);
  return () => clearInterval(timer);
}

function when(s) {
  if (s.cron) return `cron ${plain(s.cron)}`;
  if (s.every) return `every ${plain(s.every)}`;
  if (s.at) return `at ${fmtTime(s.at)}`;
  return '–';
}

function row(s, refresh, note) {
  const del = h('button', { type: 'button', class: 'danger small', data: { action: 'delete' } }, 'Delete');
  del.addEventListener('click', async () => {
    del.disabled = true;
    try {
      await api.del(`/v1/schedules/${enc(s.id)}`);
    } catch (e) {
      note.className = 'error';
      note.textContent = e.message;
    }
    refresh();
  });
  const run = s.run ?? {};
  const what = run.kind === 'task' ? `task: ${oneLine(run.task, 80)}` : oneLine(runWhat({ kind: 'exec', command: run.command }), 80);
  return h(
    'tr',
    { data: { schedule: s.id } },
    h('td', {}, plain(s.name)),
    h('td', { class: 'mono' }, when(s)),
    h('td', { class: 'mono what' }, what),
    h('td', {}, plain(s.missed ?? '–')),
    h('td', {}, plain(s.overlap ?? '–')),
    h('td', { class: 'nowrap' }, s.nextFire ? fmtTime(s.nextFire) : '–'),
    h('td', { class: 'nowrap' }, s.lastFire ? fmtTime(s.lastFire) : 'never'),
    h('td', {}, del),
  );
}

function select(name, options) {
  return h(
    'select',
    { name },
    options.map(([v, label]) => h('option', { value: v }, label)),
  );
}

function createForm(refresh) {
  const name = h('input', { type: 'text', name: 'name', placeholder: 'nightly-tests', autocomplete: 'off' });
  const whenKind = select('when', [
    ['every', 'every (a duration: 30m, 6h, 1d)'],
    ['cron', 'cron (min hour day month weekday)'],
    ['at', 'at (one time)'],
  ]);
  const whenValue = h('input', { type: 'text', name: 'whenValue', placeholder: '1h', autocomplete: 'off' });
  whenKind.addEventListener('change', () => {
    whenValue.type = whenKind.value === 'at' ? 'datetime-local' : 'text';
    whenValue.placeholder = { every: '1h', cron: '0 3 * * *', at: '' }[whenKind.value];
  });
  const missed = select('missed', [
    ['once', 'run once when missed'],
    ['skip', 'skip missed times'],
  ]);
  const overlap = select('overlap', [
    ['skip', 'skip while the last one runs'],
    ['queue', 'queue behind the last one'],
  ]);
  const fields = runRequestFields();
  const message = h('p', { role: 'status' });
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: async (e) => {
        e.preventDefault();
        message.className = 'muted';
        try {
          if (!name.value.trim()) throw new Error('name the schedule');
          if (!whenValue.value.trim()) throw new Error(`say when (${whenKind.value})`);
          const w = whenKind.value === 'at' ? new Date(whenValue.value).toISOString() : whenValue.value.trim();
          const body = { name: name.value.trim(), [whenKind.value]: w, run: fields.value(), missed: missed.value, overlap: overlap.value };
          await api.post('/v1/schedules', body);
          message.className = 'ok';
          message.textContent = `Schedule ${body.name} made.`;
          name.value = '';
          refresh();
        } catch (err) {
          message.className = 'error';
          message.textContent = err.message;
        }
      },
    },
    h('h2', {}, 'New schedule'),
    field('Name', name),
    h('div', { class: 'row' }, field('When', whenKind), field('Value', whenValue)),
    h('div', { class: 'row' }, field('If missed', missed), field('If still running', overlap)),
    fields.el,
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, 'Create schedule'), message),
  );
  return form;
}
