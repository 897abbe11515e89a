import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PolicyError } from './load.js';
import { checkHostPath, normalizePolicy, podPathError, type NormalizeDeps } from './normalize.js';
import { policySchema, type PolicyInput } from './schema.js';

// A real directory tree with a fake home inside it, so symlinks are resolved by the real
// file system exactly as they would be for a user.
const root = realpathSync(mkdtempSync(join(tmpdir(), 'clawpod-policy-')));
after(() => rmSync(root, { recursive: true, force: true }));

const home = join(root, 'home');
const clawpodHome = join(home, '.clawpod');
for (const d of ['.ssh', '.clawpod/runs', 'datasets/images', 'projects', '.config']) mkdirSync(join(home, d), { recursive: true });
writeFileSync(join(home, '.ssh', 'id_ed25519'), 'not a real key');
symlinkSync(join(home, '.ssh'), join(home, 'innocent'));
symlinkSync(join(home, '.ssh', 'id_ed25519'), join(home, 'projects', 'key'));
symlinkSync(home, join(home, 'projects', 'up'));
symlinkSync(join(home, 'datasets'), join(home, 'data-link'));

const deps: NormalizeDeps = { home, clawpodHome, realpath: (p) => realpathSync(p) };

function rulesFor(doc: PolicyInput, d: NormalizeDeps = deps) {
  return normalizePolicy(policySchema.parse(doc), '/p.yaml', d);
}

function mountError(host: string, path = '/data', d: NormalizeDeps = deps): string {
  try {
    rulesFor({ filesystem: { mounts: [{ host, path }] } }, d);
  } catch (e) {
    assert.ok(e instanceof PolicyError, String(e));
    assert.ok(!e.message.includes('\n'));
    return e.message;
  }
  assert.fail(`mount of ${host} at ${path} was accepted`);
}

test('the strict policy normalizes to numbers', () => {
  const r = rulesFor({});
  assert.deepEqual(r.resources, { cpus: 1, memoryBytes: 512 * 1024 ** 2, pids: 256, timeoutMs: 600_000, diskBytes: 1024 ** 3 });
  assert.equal(r.workspace, 'overlay');
  assert.deepEqual(r.mounts, []);
  assert.deepEqual(r.network, { allow: [], deny: [], hosts: {}, extraCA: [] });
  assert.equal(r.source, '/p.yaml');
});

test('mount hosts expand ~ and resolve symlinks', () => {
  const r = rulesFor({
    filesystem: {
      mounts: [
        { host: '~/datasets', path: '/data' },
        { host: join(home, 'data-link', 'images'), path: '/mnt/images', mode: 'rw' },
      ],
    },
  });
  assert.deepEqual(r.mounts, [
    { host: join(home, 'datasets'), path: '/data', mode: 'ro' },
    { host: join(home, 'datasets', 'images'), path: '/mnt/images', mode: 'rw' },
  ]);
});

test('a denied path itself is refused', () => {
  assert.match(
    mountError('~/.ssh'),
    /^policy \/p\.yaml: filesystem\.mounts\[0\]\.host: .*\.ssh is ~\/\.ssh, which a pod may never see \(use a directory outside it\)$/,
  );
  assert.match(mountError(clawpodHome), /is clawpod's state directory/);
});

test('a path inside a denied path is refused', () => {
  assert.match(mountError('~/.ssh/id_ed25519'), /is inside ~\/\.ssh/);
  assert.match(mountError(join(clawpodHome, 'runs')), /is inside clawpod's state directory/);
});

test('an ancestor of a denied path is refused', () => {
  assert.match(mountError('~'), /contains ~\/\.ssh.*pick a narrower directory/);
  assert.match(mountError(root), /contains ~\/\.ssh/);
  assert.match(mountError('/'), /contains/);
  assert.match(mountError('~/.config'), /contains ~\/\.config\/(gh|clawpod)/, 'even when the denied path does not exist');
});

test('symlinks pointing into a denied path are refused', () => {
  assert.match(mountError('~/innocent'), /\.ssh is ~\/\.ssh/);
  assert.match(mountError('~/projects/key'), /is inside ~\/\.ssh/);
  assert.match(mountError('~/projects/up'), /contains ~\/\.ssh/);
});

test('a symlinked home cannot hide its denied paths', () => {
  const realHome = join(root, 'real-home');
  mkdirSync(join(realHome, 'work'), { recursive: true });
  const linkHome = join(root, 'link-home');
  symlinkSync(realHome, linkHome);
  const d: NormalizeDeps = { home: linkHome, clawpodHome: join(linkHome, '.clawpod'), realpath: (p) => realpathSync(p) };
  // ~/.ssh does not exist here, but mounting the real home would still expose it once created.
  assert.match(mountError(realHome, '/data', d), /contains ~\/\.ssh/);
  assert.equal(rulesFor({ filesystem: { mounts: [{ host: '~/work', path: '/w' }] } }, d).mounts[0].host, join(realHome, 'work'));
});

test('system paths are refused', () => {
  assert.match(mountError('/etc'), /contains \/etc\/shadow/);
  assert.match(mountError('/proc/self'), /inside \/proc/);
  assert.match(mountError('/dev'), /is \/dev/);
});

test('a missing host path names the path and the fix', () => {
  const msg = mountError('~/nope');
  assert.equal(msg, `policy /p.yaml: filesystem.mounts[0].host: ~/nope (${join(home, 'nope')}) does not exist (create it, or remove this mount)`);
  assert.match(mountError('relative/dir'), /must be an absolute path or start with ~\//);
  assert.match(mountError('~someone/dir'), /must be an absolute path or start with ~\//);
});

test('checkHostPath is the same rule for other callers', () => {
  assert.equal(checkHostPath(join(home, 'projects'), deps), null);
  assert.equal(checkHostPath(join(home, 'datasets', 'images'), deps), null);
  assert.match(checkHostPath(home, deps) ?? '', /contains/);
  assert.match(checkHostPath(join(home, '.aws', 'credentials'), deps) ?? '', /inside ~\/\.aws/);
  assert.match(checkHostPath('/var/run/docker.sock', deps) ?? '', /docker\.sock/);
  assert.match(checkHostPath('/run', deps) ?? '', /contains/);
  assert.equal(
    checkHostPath(join(home, '.sshkeys-backup'), {
      ...deps,
      realpath: () => {
        throw new Error('missing');
      },
    }),
    null,
    'a look-alike sibling is not inside ~/.ssh',
  );
});

test('reserved and malformed pod paths are refused', () => {
  for (const p of [
    '/',
    '/usr',
    '/usr/local/bin',
    '/bin',
    '/lib64',
    '/etc/x',
    '/proc',
    '/tmp/x',
    '/workspace',
    '/workspace/sub',
    '/home/user',
    '/run/secrets',
    '/memory',
    '/skills/x',
    '/dev/shm',
    'data',
    '',
    '/data/../etc',
    '/data/.',
    '/data/',
    '//data',
    '/a/\u0000',
  ]) {
    assert.notEqual(podPathError(p), null, JSON.stringify(p));
  }
  for (const p of ['/data', '/mnt/x', '/opt/data', '/usrdata', '/tmpfiles', '/srv']) assert.equal(podPathError(p), null, p);
  assert.match(mountError('~/datasets', '/usr/share/data'), /^policy \/p\.yaml: filesystem\.mounts\[0\]\.path: \/usr\/share\/data is reserved/);
});

test('a mount inside another is refused, in either order (bwrap would make its mount point on the host)', () => {
  for (const mounts of [
    [
      { host: '~/datasets', path: '/data', mode: 'rw' as const },
      { host: '~/projects', path: '/data/sub' },
    ],
    [
      { host: '~/projects', path: '/data/sub' },
      { host: '~/datasets', path: '/data', mode: 'rw' as const },
    ],
  ]) {
    assert.throws(() => rulesFor({ filesystem: { mounts } }), {
      name: 'PolicyError',
      message: /filesystem\.mounts\[1\]\.path: \/data\/sub is inside \/data, another mount \(mounts may not nest\).*\/mnt\/sub/,
    });
  }
  // Siblings and a shared prefix are fine.
  rulesFor({
    filesystem: {
      mounts: [
        { host: '~/datasets', path: '/data' },
        { host: '~/projects', path: '/data2' },
        { host: '~/datasets', path: '/mnt/data' },
      ],
    },
  });
});

test('duplicate pod paths are refused', () => {
  assert.throws(
    () =>
      rulesFor({
        filesystem: {
          mounts: [
            { host: '~/datasets', path: '/data' },
            { host: '~/projects', path: '/data' },
          ],
        },
      }),
    { name: 'PolicyError', message: /filesystem\.mounts\[1\]\.path: \/data is mounted twice/ },
  );
});

test('secret sources are parsed, and file refs expanded but not read', () => {
  const r = rulesFor({
    network: { allow: ['API.github.com'] },
    secrets: [
      { name: 'GITHUB_TOKEN', from: 'env:GITHUB_TOKEN', hosts: ['API.GitHub.com'] },
      { name: 'NPM_TOKEN', from: 'file:~/tokens/does-not-exist', hosts: ['registry.npmjs.org'] },
    ],
  });
  assert.deepEqual(r.secrets, [
    { name: 'GITHUB_TOKEN', from: { kind: 'env', ref: 'GITHUB_TOKEN' }, hosts: ['api.github.com'] },
    { name: 'NPM_TOKEN', from: { kind: 'file', ref: join(home, 'tokens', 'does-not-exist') }, hosts: ['registry.npmjs.org'] },
  ]);
  assert.deepEqual(r.network.allow, ['api.github.com']);
  assert.throws(() => rulesFor({ secrets: [{ name: 'T', from: 'file:tok', hosts: ['a.test'] }] }), /secrets\[0\]\.from: file path "tok" must be absolute/);
});

test('sizes and durations are converted', () => {
  const r = rulesFor({ resources: { cpus: 0.5, memory: '1.5Gi', disk: '100M', timeout: '1h30m', pids: 64 } });
  assert.deepEqual(r.resources, { cpus: 0.5, memoryBytes: 1.5 * 1024 ** 3, pids: 64, timeoutMs: 5_400_000, diskBytes: 100e6 });
});
