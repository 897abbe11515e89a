// The credential deny list covers every account on the host, not just the caller's home: a
// workspace or mount may not be, sit inside, or contain any user's credentials or the host's
// secret stores. The password database is injected as text, so the rule is checked without
// touching the real /etc/passwd.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { checkHostPath, type NormalizeDeps } from './normalize.js';
import { passwdHomes } from './denylist.js';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'clawpod-deny-')));
after(() => rmSync(root, { recursive: true, force: true }));

const mine = join(root, 'me');
const alice = join(root, 'home', 'alice');
const bob = join(root, 'srv', 'bob');
const admin = join(root, 'home', 'admin');
for (const d of [join(mine, 'proj'), join(alice, '.ssh'), join(alice, 'code'), join(bob, 'site'), join(admin, 'work')]) {
  mkdirSync(d, { recursive: true });
}
// A user whose ~/.ssh is a symlink to a key store elsewhere.
mkdirSync(join(root, 'keystore', 'bob-ssh'), { recursive: true });
symlinkSync(join(root, 'keystore', 'bob-ssh'), join(bob, '.ssh'));

const passwd = [
  'root:x:0:0:root:/root:/bin/bash',
  `alice:x:1000:1000:Alice,,,:${alice}/:/bin/bash`,
  `bob:x:1001:1001::${bob}:/bin/sh`,
  `admin:x:1002:1002::${admin}:/bin/sh`,
  '# a comment line',
  'broken line without fields',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
].join('\n');

// The cast lets this file run against the module before it knew about passwd/sudoUser.
const deps = { home: mine, clawpodHome: join(mine, '.clawpod'), realpath: (p: string) => realpathSync(p), passwd } as NormalizeDeps;

function refused(p: string, d: NormalizeDeps = deps): string {
  const why = checkHostPath(p, d);
  assert.ok(why, `${p} was accepted`);
  assert.ok(!why.includes('\n'), 'one line');
  return why;
}

test('every home in the password database has its credentials denied', () => {
  assert.match(refused(join(alice, '.ssh')), new RegExp(`is ${alice}/\\.ssh, which a pod may never see \\(`));
  assert.match(refused(join(alice, '.ssh', 'id_ed25519')), /is inside .*alice\/\.ssh/);
  assert.match(refused(join(alice, '.aws')), /alice\/\.aws/);
  assert.match(refused(join(alice, '.config', 'gh')), /alice\/\.config\/gh/);
  assert.match(refused(join(bob, '.gnupg', 'private-keys-v1.d')), /bob\/\.gnupg/);
  assert.match(refused(join(bob, '.kube', 'config')), /bob\/\.kube/);
  assert.match(refused(join(bob, '.docker', 'config.json')), /bob\/\.docker/);
  for (const f of ['.git-credentials', '.netrc', '.npmrc', '.pypirc']) assert.match(refused(join(alice, f)), new RegExp(`alice/\\${f}`));
  assert.equal(checkHostPath(join(alice, 'code'), deps), null, "the rest of a user's home is fine");
  assert.equal(checkHostPath(join(bob, 'site'), deps), null);
});

test("a directory above any user's credentials is refused, with the fix", () => {
  assert.match(refused(alice), /contains .*alice\/\.ssh.*\(pick a narrower directory/);
  assert.match(refused(join(root, 'home')), /contains .*alice\//, 'mounting /home would expose every ~/.ssh');
  assert.match(refused(join(root, 'srv')), /contains .*bob\//);
});

test('a symlinked credential directory is denied where it really lives', () => {
  assert.match(refused(join(root, 'keystore', 'bob-ssh')), /bob\/\.ssh/);
  assert.match(refused(join(root, 'keystore')), /contains .*bob\/\.ssh/);
});

test("$SUDO_USER's home is denied even when passwd is all we know of it", () => {
  const onlySudo = { ...deps, passwd: `admin:x:1002:1002::${admin}:/bin/sh\n`, sudoUser: 'admin' } as NormalizeDeps;
  assert.match(refused(admin, onlySudo), /contains .*admin\/\.ssh/);
  assert.match(refused(join(admin, '.ssh'), onlySudo), /admin\/\.ssh/);
  assert.equal(checkHostPath(join(admin, 'work'), onlySudo), null);
});

test("host secret stores and clawpod's own run state are denied", () => {
  for (const p of [
    '/run/clawpod',
    '/run/clawpod/egress',
    '/run/user/1000',
    '/etc/ssh',
    '/etc/ssh/ssh_host_ed25519_key',
    '/etc/ssl/private',
    '/run/secrets',
    '/run/secrets/db',
    '/var/run/secrets/kubernetes.io',
    '/root/.aws',
    '/root/.docker',
    '/var/lib/docker/volumes/x',
    '/var/lib/containerd',
    '/var/lib/kubelet/pods',
    '/etc/kubernetes/pki',
    '/etc/docker',
    '/etc/letsencrypt/live',
    '/etc/pki/tls',
    '/var/lib/private',
  ]) {
    refused(p);
  }
  assert.match(refused('/etc/ssl'), /contains \/etc\/ssl\/private/);
  assert.match(refused('/var/lib'), /contains \/var\/lib\/(docker|containerd|kubelet|private)/);
  assert.match(refused(join(mine, '.ssh')), /is ~\/\.ssh/, "the caller's own home is still shown as ~");
});

test('a credential directory of a home nobody listed is still refused by its name', () => {
  // LDAP users are not in /etc/passwd: the path itself says what it is.
  assert.match(refused('/srv/people/carol/.ssh/id_rsa'), /\.ssh/);
  assert.match(refused('/srv/people/carol/.gnupg'), /\.gnupg/);
  assert.equal(checkHostPath('/srv/people/carol/projects', deps), null);
});

test('passwdHomes parses the password database like getent', () => {
  assert.deepEqual(
    passwdHomes(passwd),
    new Map([
      ['root', '/root'],
      ['alice', alice],
      ['bob', bob],
      ['admin', admin],
      ['nobody', '/nonexistent'],
    ]),
  );
  assert.deepEqual(passwdHomes('x:x:1:1::relative/home:/bin/sh\n:x:1:1::/h:/bin/sh\n'), new Map(), 'relative homes and empty names are skipped');
});
