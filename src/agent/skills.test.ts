import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Rules } from '../policy/types.js';
import { discoverSkills, hostGranted, skillMounts, skillsJson, skillsPrompt, skillsTable, SKILL_FILE_MAX_BYTES } from './skills.js';

const base = realpathSync(mkdtempSync(join(tmpdir(), 'clawpod-skills-')));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = join(base, `t${n++}`);
  mkdirSync(d);
  return d;
};

function rules(over: Partial<Rules['network']> = {}, secrets: string[] = []): Rules {
  return {
    resources: { cpus: 1, memoryBytes: 1 << 30, pids: 256, timeoutMs: 60_000, diskBytes: 1 << 30 },
    workspace: 'overlay',
    mounts: [],
    env: {},
    tools: {},
    source: 'test',
    network: { allow: [], deny: [], hosts: {}, ...over },
    secrets: secrets.map((name) => ({ name, from: { kind: 'env' as const, ref: name }, hosts: [] })),
  };
}

function skill(root: string, folder: string, front: string, body = '\nDo the thing.\n'): string {
  const dir = join(root, folder);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'SKILL.md'), `---\n${front}\n---\n${body}`);
  return dir;
}
const ok = (name: string, extra = ''): string => `name: ${name}\ndescription: The ${name} skill${extra ? `\n${extra}` : ''}`;
const discover = (userDir: string, workspace: string | null, r = rules()) => discoverSkills({ userDir, workspace, rules: r });

describe('discoverSkills', () => {
  test('missing directories mean no skills, not an error', () => {
    const d = fresh();
    assert.deepEqual(discover(join(d, 'nope'), join(d, 'nows')), { skills: [], problems: [] });
    assert.deepEqual(discover(join(d, 'nope'), null), { skills: [], problems: [] });
  });

  test('finds skills in both roots, sorted, with realpath dirs and sources', () => {
    const d = fresh();
    const user = join(d, 'home', 'skills');
    const ws = join(d, 'ws');
    skill(user, 'zeta', ok('zeta'));
    skill(user, 'alpha', ok('alpha'));
    skill(join(ws, '.clawpod', 'skills'), 'beta', 'name: beta\ndescription: >\n  Multi\n  line\nhosts: [api.example.com]\nsecrets: [TOKEN]');
    writeFileSync(join(user, 'README.md'), 'not a skill');
    const { skills, problems } = discover(user, ws);
    assert.deepEqual(problems, []);
    assert.deepEqual(
      skills.map((s) => [s.name, s.source, s.dir]),
      [
        ['alpha', 'user', join(user, 'alpha')],
        ['beta', 'workspace', join(ws, '.clawpod', 'skills', 'beta')],
        ['zeta', 'user', join(user, 'zeta')],
      ],
    );
    assert.equal(skills[1].description, 'Multi line');
    assert.deepEqual(skills[1].asks, { hosts: ['api.example.com'], secrets: ['TOKEN'] });
    assert.equal(skills[0].overrides, undefined);
  });

  test('a workspace skill overrides the user skill of the same name, and the table says so', () => {
    const d = fresh();
    const userDir = skill(join(d, 'u'), 'lint', ok('lint'));
    skill(join(d, 'ws', '.clawpod', 'skills'), 'lint', 'name: lint\ndescription: Workspace lint');
    const { skills, problems } = discover(join(d, 'u'), join(d, 'ws'));
    assert.deepEqual(problems, []);
    assert.equal(skills.length, 1);
    assert.equal(skills[0].source, 'workspace');
    assert.equal(skills[0].description, 'Workspace lint');
    assert.equal(skills[0].overrides, userDir);
    assert.match(skillsTable(skills, problems), new RegExp(`lint  \\(workspace, overrides the user skill at ${userDir}\\)`));
  });

  const problemCases: Array<[string, (root: string) => void, RegExp]> = [
    ['no SKILL.md', (r) => mkdirSync(join(r, 'empty')), /has no SKILL\.md/],
    [
      'no front matter',
      (r) => {
        mkdirSync(join(r, 'plain'));
        writeFileSync(join(r, 'plain', 'SKILL.md'), '# plain\n');
      },
      /no front matter/,
    ],
    [
      'unterminated front matter',
      (r) => {
        mkdirSync(join(r, 'open'));
        writeFileSync(join(r, 'open', 'SKILL.md'), '---\nname: open\n');
      },
      /no front matter/,
    ],
    ['bad YAML', (r) => skill(r, 'bad', 'name: [bad'), /not valid YAML/],
    ['front matter not a mapping', (r) => skill(r, 'list', '- a\n- b'), /not a mapping/],
    ['no name', (r) => skill(r, 'anon', 'description: x'), /has no name/],
    ['no description', (r) => skill(r, 'nodesc', 'name: nodesc'), /has no description/],
    ['bad name', (r) => skill(r, 'Bad_Name', 'name: Bad_Name\ndescription: x'), /not lower-case/],
    ['name differs from folder', (r) => skill(r, 'folder', ok('other')), /differs from its folder name "folder"/],
    ['hosts not a list', (r) => skill(r, 'h1', ok('h1', 'hosts: api.example.com')), /"hosts" must be a list/],
    ['bad host pattern', (r) => skill(r, 'h2', ok('h2', 'hosts: ["*.com"]')), /too broad/],
    ['bad secret name', (r) => skill(r, 's1', ok('s1', 'secrets: ["1-X"]')), /not a secret name/],
    ['oversized SKILL.md', (r) => skill(r, 'big', ok('big'), 'x'.repeat(SKILL_FILE_MAX_BYTES)), /larger than 64 KiB/],
    ['SKILL.md is a directory', (r) => mkdirSync(join(r, 'dirfile', 'SKILL.md'), { recursive: true }), /not a regular file/],
  ];
  for (const [what, make, expected] of problemCases) {
    test(`problem: ${what} -> skipped with one line`, () => {
      const root = fresh();
      make(root);
      skill(root, 'good', ok('good'));
      const { skills, problems } = discover(root, null);
      assert.deepEqual(
        skills.map((s) => s.name),
        ['good'],
      );
      assert.equal(problems.length, 1);
      assert.match(problems[0].problem, expected);
      assert.ok(!problems[0].problem.includes('\n'));
    });
  }

  test('a symlinked SKILL.md is skipped even when its target is a valid skill file', () => {
    const d = fresh();
    const target = join(d, 'elsewhere.md');
    writeFileSync(target, `---\n${ok('linked')}\n---\n`);
    mkdirSync(join(d, 'skills', 'linked'), { recursive: true });
    symlinkSync(target, join(d, 'skills', 'linked', 'SKILL.md'));
    const { skills, problems } = discover(join(d, 'skills'), null);
    assert.deepEqual(skills, []);
    assert.deepEqual(problems, [{ dir: join(d, 'skills', 'linked'), problem: 'SKILL.md is a symlink (it must be a plain file in the skill folder)' }]);
  });

  test('a symlinked skill folder is skipped, so /skills cannot be pointed at a host directory', () => {
    const d = fresh();
    const real = skill(join(d, 'outside'), 'sneaky', ok('sneaky'));
    mkdirSync(join(d, 'skills'));
    symlinkSync(real, join(d, 'skills', 'sneaky'));
    const { skills, problems } = discover(join(d, 'skills'), null);
    assert.deepEqual(skills, []);
    assert.equal(problems.length, 1);
    assert.match(problems[0].problem, /skill folder is a symlink/);
  });

  test('a symlinked .clawpod or .clawpod/skills in the workspace is refused', () => {
    const d = fresh();
    skill(join(d, 'real', 'skills'), 'x', ok('x'));
    mkdirSync(join(d, 'ws1'));
    symlinkSync(join(d, 'real'), join(d, 'ws1', '.clawpod'));
    mkdirSync(join(d, 'ws2', '.clawpod'), { recursive: true });
    symlinkSync(join(d, 'real', 'skills'), join(d, 'ws2', '.clawpod', 'skills'));
    for (const ws of ['ws1', 'ws2']) {
      const { skills, problems } = discover(join(d, 'none'), join(d, ws));
      assert.deepEqual(skills, []);
      assert.match(problems[0].problem, /symlink/);
    }
  });
});

describe('asks vs gets', () => {
  const policy = rules(
    { allow: ['api.example.com', '*.pypi.org', 'git.example.com:8443', '10.0.0.5', 'blocked.example.com'], deny: ['blocked.example.com', 'bad.pypi.org'] },
    ['GH_TOKEN'],
  );

  test('hostGranted follows allow and deny through matchHost', () => {
    assert.equal(hostGranted('api.example.com', policy), true);
    assert.equal(hostGranted('API.example.com', policy), true);
    assert.equal(hostGranted('api.example.com:443', policy), true);
    assert.equal(hostGranted('api.example.com:8080', policy), false, 'the allow covers only 80/443');
    assert.equal(hostGranted('files.pypi.org', policy), true);
    assert.equal(hostGranted('*.pypi.org', policy), true);
    assert.equal(hostGranted('*.files.pypi.org', policy), true);
    assert.equal(hostGranted('pypi.org', policy), false, '*.pypi.org never covers pypi.org itself');
    assert.equal(hostGranted('bad.pypi.org', policy), false, 'deny wins');
    assert.equal(hostGranted('blocked.example.com', policy), false, 'deny wins over allow');
    assert.equal(hostGranted('git.example.com:8443', policy), true);
    assert.equal(hostGranted('git.example.com', policy), false, 'allowed only on 8443');
    assert.equal(hostGranted('10.0.0.5', policy), true);
    assert.equal(hostGranted('*.example.com', policy), false, 'exact allows never grant every subdomain');
    assert.equal(hostGranted('evil.com', policy), false);
    assert.equal(hostGranted('api.example.com', rules({ allow: ['api.example.com'], deny: ['not a pattern'] })), false, 'a broken deny fails closed');
  });

  test('a skill gets only what the policy allows, and the policy is not changed', () => {
    const d = fresh();
    skill(d, 'gh', ok('gh', 'hosts: [api.example.com, evil.com, "*.pypi.org"]\nsecrets: [GH_TOKEN, AWS_SECRET]'));
    const before = structuredClone(policy);
    const { skills } = discover(d, null, policy);
    assert.deepEqual(skills[0].asks, { hosts: ['api.example.com', 'evil.com', '*.pypi.org'], secrets: ['GH_TOKEN', 'AWS_SECRET'] });
    assert.deepEqual(skills[0].gets, { hosts: ['api.example.com', '*.pypi.org'], secrets: ['GH_TOKEN'] });
    assert.deepEqual(policy, before);
    const table = skillsTable(skills, []);
    assert.match(table, /asks: hosts api\.example\.com, evil\.com, \*\.pypi\.org; secrets GH_TOKEN, AWS_SECRET/);
    assert.match(table, /gets: hosts api\.example\.com, \*\.pypi\.org; secrets GH_TOKEN/);
    assert.match(table, /not granted by the policy: evil\.com, AWS_SECRET/);
    const json = skillsJson(skills, [{ dir: join(d, 'broken'), problem: 'has no SKILL.md' }]);
    assert.deepEqual(
      json.skills.map((s) => [s.name, s.from, s.path, s.problems]),
      [['gh', 'user', join(d, 'gh'), ['host evil.com is not granted by the policy', 'secret AWS_SECRET is not granted by the policy']]],
    );
    assert.equal(json.skills[0].description, 'The gh skill');
    assert.deepEqual(json.problems, [{ path: join(d, 'broken'), problem: 'has no SKILL.md' }]);
  });

  test('a skill that asks nothing gets nothing', () => {
    const d = fresh();
    skill(d, 'quiet', ok('quiet'));
    const { skills } = discover(d, null, policy);
    assert.deepEqual(skills[0].asks, { hosts: [], secrets: [] });
    assert.deepEqual(skills[0].gets, { hosts: [], secrets: [] });
  });
});

describe('prompt, mounts and table', () => {
  const mk = (name: string, dir: string) => ({
    name,
    description: `does ${name}`,
    dir,
    source: 'user' as const,
    asks: { hosts: [], secrets: [] },
    gets: { hosts: [], secrets: [] },
  });
  const two = [mk('pdf', '/h/skills/pdf'), mk('xlsx', '/w/.clawpod/skills/xlsx')];

  test('skillsPrompt lists names and descriptions, and is empty when there are none', () => {
    assert.equal(skillsPrompt([]), '');
    assert.equal(skillsPrompt(two), 'Skills (read /skills/<name>/SKILL.md when one fits the task):\n- pdf: does pdf\n- xlsx: does xlsx\n');
  });

  test('skillMounts puts each skill dir at /skills/<name>, read-only', () => {
    assert.deepEqual(skillMounts(two), [
      { host: '/h/skills/pdf', path: '/skills/pdf', mode: 'ro' },
      { host: '/w/.clawpod/skills/xlsx', path: '/skills/xlsx', mode: 'ro' },
    ]);
    assert.deepEqual(skillMounts([]), []);
  });

  test('skillsTable shows skills and problems, and says when there are none', () => {
    assert.equal(skillsTable([], []), 'No skills found.\n');
    const t = skillsTable(two, [{ dir: '/h/skills/broken', problem: 'SKILL.md has no description' }]);
    assert.match(t, /^pdf {2}\(user\)\n {2}does pdf\n {2}dir: {2}\/h\/skills\/pdf\n {2}asks: hosts none; secrets none\n {2}gets: hosts none; secrets none\n/);
    assert.match(t, /\nSkipped:\n {2}\/h\/skills\/broken: SKILL\.md has no description\n$/);
    assert.ok(!t.includes('not granted'));
  });
});
