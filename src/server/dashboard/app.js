// clawpod's dashboard: plain ES modules, no framework, no build, nothing from the internet.
// The page is a few views behind fragment routes (#/runs, #/runs/ID/TAB, #/new, #/schedules,
// #/policy); each view gets a root element and returns what stops it (polls, streams).
import { api, setToken, takeTokenFromUrl, token, whenUnauthorized } from './api.js';
import { fill, h } from './dom.js';
import { newRunView, policyView } from './forms.js';
import { runView } from './run.js';
import { runsView } from './runs.js';
import { schedulesView } from './schedules.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const conn = document.getElementById('conn');
let stop = () => {};

const NAV = [
  ['#/runs', 'Runs'],
  ['#/new', 'Start'],
  ['#/schedules', 'Schedules'],
  ['#/policy', 'Policy'],
];

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const [top, id, tab] = parts;
  if (top === 'runs' && id) return { name: 'run', id, tab: tab || 'live' };
  if (top === 'new' || top === 'schedules' || top === 'policy') return { name: top };
  return { name: 'runs' };
}

function show() {
  takeTokenFromUrl();
  stop();
  stop = () => {};
  if (!token()) return askToken();
  const r = route();
  document.title = r.name === 'run' ? `clawpod · ${r.id}` : `clawpod · ${r.name}`;
  const current = r.name === 'run' ? '#/runs' : `#/${r.name}`;
  fill(
    nav,
    NAV.map(([href, label]) => h('a', { href, class: href === current ? 'active' : undefined }, label)),
  );
  const root = h('section', { class: `view view-${r.name}` });
  fill(main, root);
  const views = { runs: runsView, run: runView, new: newRunView, schedules: schedulesView, policy: policyView };
  stop = views[r.name](root, r) ?? (() => {});
}

/** Without a token the page can do nothing: it says where the token is and takes it pasted. */
function askToken(message) {
  fill(nav);
  const input = h('input', { type: 'password', name: 'token', placeholder: 'token', autocomplete: 'off' });
  const form = h(
    'form',
    {
      class: 'card token-form',
      onsubmit: (e) => {
        e.preventDefault();
        const t = input.value.trim();
        if (!t) return;
        setToken(t);
        show();
      },
    },
    h('h2', {}, 'Sign in'),
    message ? h('p', { class: 'error' }, message) : null,
    h('p', {}, 'Open the link clawpod serve printed when it started (it carries the token), or paste the token from $CLAWPOD_HOME/serve.token:'),
    h('div', { class: 'row' }, input, h('button', { type: 'submit' }, 'Use token')),
  );
  fill(main, form);
}

whenUnauthorized(() => {
  setToken(null);
  stop();
  stop = () => {};
  askToken('The server refused the token (401): paste the current one.');
});

async function health() {
  try {
    await api.getJson('/v1/health');
    conn.className = 'conn ok';
    conn.textContent = 'connected';
  } catch {
    conn.className = 'conn bad';
    conn.textContent = 'server unreachable';
  }
}

window.addEventListener('hashchange', show);
show();
health();
setInterval(health, 10_000);
