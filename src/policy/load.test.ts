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
  assert.match(e.message, /^policy \/x\/p\.yaml: not valid YAML at line 3: .*unique/);
});

test('unknown keys name the key and where it is', () => {
  assert.equal(
    loadError('resourcez:\n  cpus: 2\n').message,
    'policy /x/p.yaml: unknown key "resourcez" at top level (check spelling; see clawpod policy explain)',
  );
  assert.equal(
    loadError('resources:\n  cpu: 2\n').message,
    'policy /x/p.yaml: unknown key "cpu" in resources (check spelling; see clawpod policy explain)',
  );
  assert.equal(
    loadError('filesystem:\n  mounts:\n    - { host: /a, path: /b, ro: true }\n').message,
    'policy /x/p.yaml: unknown key "ro" in filesystem.mounts[0] (check spelling; see clawpod policy explain)',
  );
});

test('schema errors name the field and the fix', () => {
  assert.equal(loadError('resources:\n  memory: 12Q\n').message, 'policy /x/p.yaml: resources.memory: "12Q" is not a size (use e.g. 512Mi, 2Gi)');
  assert.equal(loadError('resources:\n  timeout: abc\n').message, 'policy /x/p.yaml: resources.timeout: "abc" is not a duration (use e.g. 30s, 10m, 1h)');
  assert.equal(
    loadError('filesystem:\n  workspace: copy\n').message,
    'policy /x/p.yaml: filesystem.workspace: must be one of overlay, ro, rw, none (got "copy")',
  );
  assert.match(loadError('env:\n  LD_PRELOAD: /x.so\n').message, /^policy \/x\/p\.yaml: env: LD_PRELOAD cannot be set/);
  assert.match(loadError('network:\n  hosts:\n    svc.test: nope\n').message, /^policy \/x\/p\.yaml: network\.hosts\["svc\.test"\]: "nope" is not an IP address/);
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
  assert.equal(describeIssue({ code: 'custom', path: ['resources', 'pids'], message: 'too many', input: 1 }), 'resources.pids: too many');
});
