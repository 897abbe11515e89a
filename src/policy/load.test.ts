import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeIssue, formatPath, loadPolicy, PolicyError, type LoadDeps } from './load.js';

/** An in-memory file system: what loadPolicy reads, without touching disk. */
function fakeFs(files: Record<string, string>, env: Record<string, string> = {}): LoadDeps {
  return {
    env,
    readFile(p: string): string {
      if (Object.hasOwn(files, p)) return files[p];
      const err = new Error(`ENOENT: no such file, open '${p}'`) as NodeJS.ErrnoException;
      err.code = 'ENOENT';
      throw err;
    },
  };
}

function loadError(text: string): PolicyError {
  try {
    loadPolicy('/x/p.yaml', fakeFs({ '/x/p.yaml': text }));
  } catch (e) {
    assert.ok(e instanceof PolicyError, `expected PolicyError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be refused`);
}

test('no source, "strict" and "builtin:strict" are the built-in strict policy', () => {
  const deps = fakeFs({});
  const strict = loadPolicy(undefined, deps);
  assert.equal(strict.resources.memory, '512Mi');
  assert.deepEqual(strict.network.allow, []);
  assert.deepEqual(loadPolicy('strict', deps), strict);
  assert.deepEqual(loadPolicy('builtin:strict', deps), strict);
});

test('a valid file loads with defaults filled in; ~ in the path uses HOME', () => {
  const deps = fakeFs({ '/home/u/p.yaml': 'resources:\n  memory: 2Gi\nnetwork:\n  allow: [api.github.com]\n' }, { HOME: '/home/u' });
  const p = loadPolicy('~/p.yaml', deps);
  assert.equal(p.resources.memory, '2Gi');
  assert.equal(p.resources.pids, 256);
  assert.deepEqual(p.network.allow, ['api.github.com']);
});

test('an empty file is the strict policy', () => {
  assert.deepEqual(loadPolicy('/e.yaml', fakeFs({ '/e.yaml': '' })), loadPolicy(undefined, fakeFs({})));
});

test('malformed YAML is one line with the line number', () => {
  const e = loadError('resources:\n  memory: 512Mi\n  cpus: [1,\nnetwork: {\n');
  assert.match(e.message, /^policy \/x\/p\.yaml: not valid YAML at line \d+: \S/);
});

test('a repeated key is a YAML error, not a silent override', () => {
  const e = loadError('resources:\n  memory: 1Gi\n  memory: 64Gi\n');
  assert.equal(e.message, 'policy /x/p.yaml: not valid YAML at line 3: key "memory" appears twice (keep one: a later value must not silently win)');
});

test('unknown keys name the key and where it is', () => {
  assert.equal(
    loadError('resourcez:\n  cpus: 2\n').message,
    'policy /x/p.yaml: unknown key "resourcez" at top level (did you mean resources? the top level takes version, resources, filesystem, network, secrets, env, tools, settings)',
  );
  assert.equal(
    loadError('resources:\n  cpu: 2\n').message,
    'policy /x/p.yaml: unknown key "cpu" in resources (did you mean cpus? resources takes cpus, memory, pids, timeout, disk)',
  );
  assert.equal(
    loadError('filesystem:\n  mounts:\n    - { host: /a, path: /b, ro: true }\n').message,
    'policy /x/p.yaml: unknown key "ro" in filesystem.mounts[0] (filesystem.mounts[0] takes host, path, mode)',
  );
});

test('schema errors name the field and the fix', () => {
  assert.equal(loadError('resources:\n  memory: 12Q\n').message, 'policy /x/p.yaml: resources.memory: "12Q" is not a size (use e.g. 512Mi, 2Gi)');
  assert.equal(loadError('resources:\n  timeout: abc\n').message, 'policy /x/p.yaml: resources.timeout: "abc" is not a duration (use e.g. 30s, 10m, 1h)');
  assert.equal(
    loadError('filesystem:\n  workspace: copy\n').message,
    'policy /x/p.yaml: filesystem.workspace: must be one of overlay, ro, rw, none (got "copy"), e.g. workspace: ro',
  );
  assert.match(loadError('env:\n  LD_PRELOAD: /x.so\n').message, /^policy \/x\/p\.yaml: env: LD_PRELOAD cannot be set/);
  assert.match(
    loadError('network:\n  hosts:\n    svc.test: nope\n').message,
    /^policy \/x\/p\.yaml: network\.hosts\["svc\.test"\]: "nope" is not an IP address/,
  );
  assert.match(loadError('- a\n- b\n').message, /^policy \/x\/p\.yaml: top level must be a YAML mapping/);
});

test('only the first problem is reported', () => {
  const e = loadError('resourcez: 1\nnetworkz: 2\n');
  assert.ok(!e.message.includes('networkz'), e.message);
});

test('a missing file says how to fix it', () => {
  assert.throws(() => loadPolicy('/nope/p.yaml', fakeFs({})), {
    name: 'PolicyError',
    message: 'policy file /nope/p.yaml not found (pass an existing file to --policy, or omit it for the built-in strict policy)',
  });
});

test('other read failures are one line too', () => {
  const deps: LoadDeps = {
    env: {},
    readFile() {
      const err = new Error('EISDIR') as NodeJS.ErrnoException;
      err.code = 'EISDIR';
      throw err;
    },
  };
  assert.throws(() => loadPolicy('/dir', deps), { name: 'PolicyError', message: /^policy file \/dir is a directory/ });
});

test('PolicyError flattens multi-line text', () => {
  assert.equal(new PolicyError('a\n  b\nc').message, 'a b c');
});

test('formatPath and describeIssue spell paths the way the YAML reads', () => {
  assert.equal(formatPath(['filesystem', 'mounts', 0, 'host']), 'filesystem.mounts[0].host');
  assert.equal(formatPath(['env', 'a-b']), 'env["a-b"]');
  assert.equal(describeIssue({ code: 'custom', path: ['resources', 'pids'], message: 'too many', input: 1 }), 'resources.pids: too many, e.g. pids: 512');
});

test('a misspelt key gets "did you mean", at every level', () => {
  const cases: [string, RegExp][] = [
    ['resorces: {}\n', /unknown key "resorces" at top level \(did you mean resources\?/],
    ['netwrok:\n  alow: []\n', /unknown key "netwrok" at top level \(did you mean network\?/],
    ['network:\n  alow: []\n', /unknown key "alow" in network \(did you mean allow\? network takes allow, deny, hosts, extraCA\)/],
    ['resources: { memroy: 1Gi }\n', /unknown key "memroy" in resources \(did you mean memory\?/],
    ['secrets: [{ name: T, from: env:T, hosts: [a.com], inject: { hedaer: A } }]\n', /in secrets\[0\]\.inject \(did you mean header\?/],
    ['settings: { gti: inherit }\n', /in settings \(did you mean git\?/],
    ['tools: { deny: [bsh] }\n', /^policy \/x\/p\.yaml: tools\.deny\[0\]: "bsh" is not a tool \(did you mean bash\? the tools are bash, read_file/],
    ['tools: { approve: [Bash, frobnicate] }\n', /tools\.approve\[0\]: "Bash" is not a tool \(did you mean bash\?/],
  ];
  for (const [text, re] of cases) assert.match(loadError(text).message, re, text);
  assert.match(loadError('tools: { allow: [frobnicate] }\n').message, /"frobnicate" is not a tool \(the tools are bash, /);
  assert.match(loadError('zzz: 1\n').message, /unknown key "zzz" at top level \(the top level takes version, /);
});

test("zod's own messages become one line naming the key, what is wrong and a right value", () => {
  const cases: [string, string][] = [
    ['resources: []\n', 'resources: must be a mapping (got a list), e.g. resources: {memory: 1Gi, timeout: 30m}'],
    ['resources:\n', 'resources: is empty (a key with nothing after it): give it a value or remove the line, e.g. resources: {memory: 1Gi, timeout: 30m}'],
    [
      'filesystem: { mounts: { host: /a, path: /b } }\n',
      'filesystem.mounts: must be a list of mappings (got a mapping), e.g. mounts: [{host: ~/datasets, path: /data, mode: ro}]',
    ],
    ['filesystem: { mounts: [/a] }\n', 'filesystem.mounts[0]: must be a mapping (got "/a"), e.g. {host: ~/datasets, path: /data, mode: ro}'],
    ['filesystem: { mounts: [{ host: /a }] }\n', 'filesystem.mounts[0].path: is missing (string, required), e.g. path: /data'],
    ['network: { allow: github.com }\n', 'network.allow: must be a list of host patterns (got "github.com"), e.g. allow: [api.github.com, "*.pypi.org"]'],
    ['network: { hosts: [a] }\n', 'network.hosts: must be a map of host name to IP address (got a list), e.g. hosts: {svc.test: 127.0.0.1}'],
    ['network: { extraCA: [""] }\n', 'network.extraCA[0]: must not be empty'],
    ['secrets: [{ name: T, from: env:T }]\n', 'secrets[0].hosts: is missing (list of host patterns, required), e.g. hosts: [api.github.com]'],
    [
      'secrets: [{ name: T, from: env:T, hosts: [] }]\n',
      'secrets[0].hosts: must list at least one host the secret may be sent to, e.g. hosts: [api.github.com]',
    ],
    ['env: [A=1]\n', 'env: must be a map of variable name to string (got a list), e.g. env: {NODE_ENV: test}'],
    ['tools: { allow: bash }\n', 'tools.allow: must be a list of tool names (got "bash"), e.g. allow: [bash, read_file, grep]'],
    ['filesystem: { ignore: x }\n', 'filesystem.ignore: must be a list of gitignore patterns (got "x"), e.g. ignore: [coverage/, "*.log"]'],
    ['resources: { cpus: 0 }\n', 'resources.cpus: must be more than 0 (got 0), e.g. cpus: 2'],
  ];
  for (const [text, want] of cases) assert.equal(loadError(text).message, `policy /x/p.yaml: ${want}`, text);
});

test('YAML mistakes say what to do', () => {
  assert.match(loadError('\tresources: {}\n').message, /line 1: .*\(indent with spaces/);
  assert.match(loadError('resources: { cpus: 1, cpus: 2 }\n').message, /line 1: key "cpus" appears twice/);
  assert.match(loadError('a: [\n').message, /not valid YAML at line \d+: .*\(check the indentation, quotes and brackets there; e\.g\. /);
});
