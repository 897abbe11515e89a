// The agent's face through the real binary, off a terminal: what the run loaded, model errors
// that name the endpoint, the variable and the fix, a keyless local OpenAI-compatible server,
// --model without a provider, and `skills list --json`.
import assert from 'node:assert/strict';
import net from 'node:net';
import { before, test } from 'node:test';
import { startFakeAnthropic } from './fakes/anthropic.js';
import { startFakeOpenAI } from './fakes/openai.js';
import { cli, tmpDir, workspace } from './helpers.js';

let home: string;
before(() => {
  home = tmpDir('home');
});
const NO_KEYS = {
  ANTHROPIC_API_KEY: undefined,
  OPENAI_API_KEY: undefined,
  ANTHROPIC_BASE_URL: undefined,
  OPENAI_BASE_URL: undefined,
  CLAWPOD_MODEL: undefined,
};

test('the line after the run id says what context was loaded, and what came from the workspace', async () => {
  const fake = await startFakeAnthropic([{ text: 'ok', stopReason: 'end_turn' }]);
  try {
    const ws = workspace({
      'CLAUDE.md': 'notes\n',
      '.clawpod/skills/csv/SKILL.md': '---\nname: csv\ndescription: CSV things\n---\nbody\n',
    });
    const r = await cli(['run', '--memory-name', 'notes', 'hi'], { home, cwd: ws, env: { ...NO_KEYS, ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: fake.url } });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.split('\n');
    const at = lines.findIndex((l) => /^clawpod: run r-/.test(l));
    assert.match(
      lines[at + 1],
      /^clawpod: context: CLAUDE\.md \(workspace\), memory "notes", skills: csv \(workspace\) · \(workspace\) items are the project's text, untrusted/,
    );
    assert.equal(r.stdout, 'ok\n', 'only the answer on stdout');
  } finally {
    await fake.close();
  }
});

test('a 401 from the model: one line naming the endpoint, the key variable and the fix; exit 1', async () => {
  const fake = await startFakeAnthropic([{ error: { status: 401, type: 'authentication_error', message: 'invalid x-api-key' } }]);
  try {
    const r = await cli(['run', 'hi'], { home, cwd: workspace(), env: { ...NO_KEYS, ANTHROPIC_API_KEY: 'sk-ant-wrong-key', ANTHROPIC_BASE_URL: fake.url } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `clawpod: model API error 401 from ${fake.url.replace(/\./g, '\\.')} \\(anthropic, model "[^"]+"\\): invalid x-api-key · check ANTHROPIC_API_KEY`,
      ),
    );
    assert.ok(!r.stderr.includes('sk-ant-wrong-key'), 'the key is never shown');
    assert.equal(r.stdout, '');
  } finally {
    await fake.close();
  }
});

test('an OpenAI base URL without /v1: the 404 says to add it', async () => {
  const fake = await startFakeOpenAI([{ content: 'never' }]);
  try {
    const r = await cli(['run', '--model', 'openai:gpt-4o', 'hi'], {
      home,
      cwd: workspace(),
      env: { ...NO_KEYS, OPENAI_API_KEY: 'sk-x', OPENAI_BASE_URL: fake.url },
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /model API error 404 from http:\/\/127\.0\.0\.1:\d+ \(openai, model "gpt-4o"\): .*OPENAI_BASE_URL usually ends in \/v1/);
  } finally {
    await fake.close();
  }
});

test('nothing listening at the base URL: the URL and its variable', async () => {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  const r = await cli(['run', '--model', 'openai:llama3', 'hi'], {
    home,
    cwd: workspace(),
    env: { ...NO_KEYS, OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` },
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`nothing is listening at http://127\\.0\\.0\\.1:${port}/v1 \\(connection refused\\): start the server, or fix OPENAI_BASE_URL`),
  );
});

test('a local OpenAI-compatible server needs no key: the run works and sends none', async () => {
  const fake = await startFakeOpenAI([{ toolCalls: [{ name: 'bash', arguments: { command: 'echo from-local-model' } }] }, { content: 'local done' }], {
    keyless: true,
  });
  try {
    const r = await cli(['run', '--model', 'openai:llama3', 'hi'], { home, cwd: workspace(), env: { ...NO_KEYS, OPENAI_BASE_URL: `${fake.url}/v1` } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'local done\n');
    assert.ok(
      fake.requests.every((q) => q.headers.authorization === undefined),
      'no Authorization header',
    );
    assert.match(JSON.stringify(fake.requests[1].body), /from-local-model/);
    assert.match(r.stderr, /▸ bash echo from-local-model\n {4}✓ \d+ ms\n {4}│ from-local-model\n/, 'the trace shows the first lines of the output');
  } finally {
    await fake.close();
  }
});

test('--model without a provider: gpt-* is openai, an unknown name is refused with the forms (exit 125)', async () => {
  const fake = await startFakeOpenAI([{ content: 'inferred' }]);
  try {
    const r = await cli(['run', '--model', 'gpt-4o', 'hi'], {
      home,
      cwd: workspace(),
      env: { ...NO_KEYS, OPENAI_API_KEY: 'sk-x', OPENAI_BASE_URL: `${fake.url}/v1` },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /clawpod: run r-\S+ \(openai:gpt-4o\)/);
    assert.equal(fake.requests[0].body.model, 'gpt-4o');
  } finally {
    await fake.close();
  }
  const bad = await cli(['run', '--model', 'llama3', 'hi'], { home, cwd: workspace(), env: { ...NO_KEYS, ANTHROPIC_API_KEY: 'k' } });
  assert.equal(bad.code, 125);
  assert.match(bad.stderr.trim(), /^clawpod: --model "llama3" names no provider and is not a claude-\* or gpt-\* name \(write anthropic:NAME or openai:NAME/);
  assert.equal(bad.runId, null, 'refused before a run exists');
});

test('skills list --json: each skill with from, path and problems; the skipped ones', async () => {
  const ws = workspace({
    '.clawpod/skills/lint/SKILL.md': '---\nname: lint\ndescription: Lint it\nhosts: [api.example.com]\n---\nbody\n',
    '.clawpod/skills/broken/README.md': 'no skill file\n',
  });
  const r = await cli(['skills', 'list', '--json'], { home, cwd: ws });
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as {
    skills: { name: string; from: string; path: string; description: string; problems: string[] }[];
    problems: { path: string; problem: string }[];
  };
  assert.deepEqual(
    j.skills.map((s) => [s.name, s.from, s.description, s.problems]),
    [['lint', 'workspace', 'Lint it', ['host api.example.com is not granted by the policy']]],
  );
  assert.match(j.skills[0].path, /\.clawpod\/skills\/lint$/);
  assert.equal(j.problems.length, 1);
  assert.match(j.problems[0].path, /broken$/);
  assert.match(j.problems[0].problem, /SKILL\.md/);
});
