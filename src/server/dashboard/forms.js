// Starting a run (a command or a task), the fields a schedule's run shares with it, and the
// policy page: a policy by name, path or inline JSON, explained in plain words.
import { api, enc } from './api.js';
import { fill, h } from './dom.js';
import { explain } from './review.js';

let counter = 0;
const uid = (p) => `${p}-${++counter}`;

export function field(label, input, hint) {
  const id = uid('f');
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
}

/** The policy as the API takes it: a name or path, or an inline object written as JSON. */
function policyValue(text) {
  const t = text.trim();
  if (!t) return undefined;
  if (t.startsWith('{')) {
    try {
      return JSON.parse(t);
    } catch (e) {
      throw new Error(`the inline policy is not valid JSON (${e.message})`);
    }
  }
  return t;
}

/** The fields of a POST /v1/runs body; value() gives the body or throws one line. */
export function runRequestFields() {
  const kindName = uid('kind');
  const exec = h('input', { type: 'radio', name: kindName, value: 'exec', checked: true });
  const task = h('input', { type: 'radio', name: kindName, value: 'task' });
  const command = h('input', { type: 'text', name: 'command', placeholder: "make test   (runs as sh -c '…')", autocomplete: 'off' });
  const taskText = h('textarea', { name: 'task', rows: 4, placeholder: 'What the agent should do' });
  const model = h('input', { type: 'text', name: 'model', placeholder: 'the default model', autocomplete: 'off' });
  const workspace = h('input', { type: 'text', name: 'workspace', placeholder: "the server's first workspace root", autocomplete: 'off' });
  const policy = h('input', { type: 'text', name: 'policy', value: 'strict', autocomplete: 'off' });
  const explained = h('div', { class: 'explained' });
  const explainBtn = h(
    'button',
    {
      type: 'button',
      data: { action: 'explain' },
      onclick: async () => {
        try {
          fill(explained, await explain(policyValue(policy.value) ?? 'strict'));
        } catch (e) {
          fill(explained, h('p', { class: 'error' }, e.message));
        }
      },
    },
    'Explain',
  );
  const execFields = h('div', {}, field('Command', command, 'A shell line, run in the pod as sh -c.'));
  const taskFields = h('div', { hidden: true }, field('Task', taskText), field('Model', model));
  const sync = () => {
    execFields.hidden = !exec.checked;
    taskFields.hidden = !task.checked;
  };
  exec.addEventListener('change', sync);
  task.addEventListener('change', sync);
  const el = h(
    'div',
    { class: 'run-fields' },
    h('div', { class: 'field kind' }, h('label', {}, exec, ' Command'), h('label', {}, task, ' Task (agent)')),
    execFields,
    taskFields,
    field('Workspace', workspace, 'An absolute path under one of the server’s --workspaces roots.'),
    h(
      'div',
      { class: 'field' },
      h('label', { for: (policy.id = uid('f')) }, 'Policy'),
      h('div', { class: 'row' }, policy, explainBtn),
      h('small', { class: 'muted' }, 'strict, a name from $CLAWPOD_HOME/policies, a path, or inline JSON.'),
      explained,
    ),
  );
  const value = () => {
    const body = {};
    if (exec.checked) {
      if (!command.value.trim()) throw new Error('write the command to run');
      Object.assign(body, { kind: 'exec', command: ['sh', '-c', command.value] });
    } else {
      if (!taskText.value.trim()) throw new Error('write the task for the agent');
      Object.assign(body, { kind: 'task', task: taskText.value });
      if (model.value.trim()) body.model = model.value.trim();
    }
    if (workspace.value.trim()) body.workspace = workspace.value.trim();
    const p = policyValue(policy.value);
    if (p !== undefined) body.policy = p;
    return body;
  };
  return { el, value };
}

export function newRunView(root) {
  const fields = runRequestFields();
  const message = h('p', { role: 'status' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Start');
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: async (e) => {
        e.preventDefault();
        message.className = 'muted';
        let body;
        try {
          body = fields.value();
        } catch (err) {
          message.className = 'error';
          message.textContent = err.message;
          return;
        }
        submit.disabled = true;
        message.textContent = 'Starting…';
        try {
          const { id } = await api.post('/v1/runs', body);
          location.hash = `#/runs/${enc(id)}`;
        } catch (err) {
          message.className = 'error';
          message.textContent = err.message;
          submit.disabled = false;
        }
      },
    },
    fields.el,
    h('div', { class: 'row' }, submit, message),
  );
  fill(root, h('h1', {}, 'Start a run'), form);
}

export function policyView(root) {
  const input = h('input', { type: 'text', name: 'policy', value: 'strict', autocomplete: 'off' });
  const out = h('div', { class: 'explained' });
  const go = async () => {
    try {
      fill(out, await explain(policyValue(input.value) ?? 'strict'));
    } catch (e) {
      fill(out, h('p', { class: 'error' }, e.message));
    }
  };
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: (e) => {
        e.preventDefault();
        go();
      },
    },
    field('Policy', input, 'strict, a name from $CLAWPOD_HOME/policies, an absolute path under a workspace root, or inline JSON.'),
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, 'Explain')),
  );
  fill(root, h('h1', {}, 'Policy in plain words'), form, h('div', { class: 'card' }, out));
  go();
}
