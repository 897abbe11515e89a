// Help and version through the real binary: every command and subcommand answers -h, --help
// and `clawpod help CMD` with its usage, one line per option of its options table (the same table
// the parser reads, so the two cannot drift), its variables, its exit codes and two examples;
// --version names the commit; an unknown option or command is one line with the choices and a
// did-you-mean; `clawpod` alone prints the usage. Nothing here needs a pod except one check that
// a pod's own --help reaches the pod.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cli, ROOT, tmpDir, workspace } from './helpers.js';
import { COMMON_ENV, COMMON_EXITS, type Command } from '../src/cli/args.js';
import { AUDIT } from '../src/cli/commands/audit.js';
import { DOCTOR } from '../src/cli/commands/doctor.js';
import { EXEC } from '../src/cli/commands/exec.js';
import { POLICY } from '../src/cli/commands/policy.js';
import { RUN } from '../src/cli/commands/run.js';
import { RUNS } from '../src/cli/commands/runs.js';
import { SKILLS } from '../src/cli/commands/skills.js';
import { DEMO } from '../src/cli/commands/demo.js';

const LEAVES: Command[] = [EXEC, RUN, ...RUNS, ...AUDIT, ...POLICY, SKILLS, DOCTOR, DEMO];
const GROUPS: [string, Command[]][] = [
  ['runs', RUNS],
  ['audit', AUDIT],
  ['policy', POLICY],
];
const home = tmpDir('home');
const seen: string[] = [];

async function clawpod(args: string[]) {
  const r = await cli(args, { home, cwd: workspace() });
  seen.push(`$ clawpod ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  return r;
}

/** The lines of one titled section ("options:") up to the next blank line. */
function section(text: string, title: string): string[] {
  const lines = text.split('\n');
  const at = lines.indexOf(`${title}:`);
  if (at < 0) return [];
  const end = lines.indexOf('', at + 1);
  return lines.slice(at + 1, end < 0 ? undefined : end);
}

/** Checks one command's help against its table. */
function checkHelp(c: Command, text: string, how: string): void {
  const where = `${how}:\n${text}`;
  assert.ok(text.startsWith(`usage: clawpod ${c.name}`), `starts with its usage line; ${where}`);
  const opts = section(text, 'options');
  const heads = opts.filter((l) => /^ {2}(-\w, )?--|^ {6}--/.test(l));
  const expected = [...Object.keys(c.options), 'help'];
  assert.deepEqual(
    heads.map((l) => l.match(/--([\w-]+)/)?.[1]),
    expected,
    `one line per option, in the table's order; ${where}`,
  );
  for (const [name, o] of Object.entries(c.options)) {
    const line = heads.find((l) => l.match(/--([\w-]+)/)?.[1] === name)!;
    if (o.short) assert.ok(line.startsWith(`  -${o.short}, --${name}`), `-${o.short} shown with --${name}: ${line}`);
    if (o.arg) assert.ok(line.includes(`--${name} ${o.arg}`), `--${name} names its value ${o.arg}: ${line}`);
    // The description is on the option's line, or on the one continuation line after it.
    const next = opts[opts.indexOf(line) + 1] ?? '';
    assert.ok(line.includes(o.desc) || (next.trim() === o.desc && !/^\s+-/.test(next)), `--${name} has its description; ${where}`);
  }
  assert.equal(opts.length, heads.length + opts.filter((l) => /^\s+[^\s-]/.test(l) && !/^ {2}(-\w, )?--/.test(l)).length, `nothing else in options; ${where}`);
  const env = section(text, 'environment');
  for (const [name] of [...(c.env ?? []), ...COMMON_ENV])
    assert.ok(
      env.some((l) => l.trim().startsWith(`${name} `)),
      `environment names ${name}; ${where}`,
    );
  const exits = section(text, 'exit codes');
  for (const [code] of c.exits ?? COMMON_EXITS)
    assert.ok(
      exits.some((l) => l.trim().startsWith(`${code} `)),
      `exit codes name ${code}; ${where}`,
    );
  const examples = section(text, 'examples');
  assert.ok(examples.length >= 2 && examples.every((l) => l.startsWith('  ') && l.includes('clawpod ')), `at least two examples; ${where}`);
  assert.ok(
    examples.some((l) => l.includes(`clawpod ${c.name}`)),
    `an example runs the command itself; ${where}`,
  );
  // Options are one line each, however long; the prose around them fits a terminal.
  const long = text.split('\n').filter((l) => l.length > 120 && !opts.includes(l));
  assert.deepEqual(long, [], `no line outside the options over 120 characters; ${where}`);
}

for (const c of LEAVES) {
  const words = c.name.split(' ');
  test(`${c.name}: --help, -h and "clawpod help ${c.name}" print its whole help, exit 0`, async () => {
    const forms = [
      [...words, '--help'],
      [...words, '-h'],
      ['help', ...words],
    ];
    const texts: string[] = [];
    for (const args of forms) {
      const r = await clawpod(args);
      assert.equal(r.code, 0, `clawpod ${args.join(' ')} exits 0:\n${r.stderr}`);
      assert.equal(r.stderr, '', `nothing on stderr for clawpod ${args.join(' ')}`);
      checkHelp(c, r.stdout, `clawpod ${args.join(' ')}`);
      texts.push(r.stdout);
    }
    assert.equal(new Set(texts).size, 1, 'the three forms print the same text');
    // --help wins wherever it stands among the command's own options.
    const firstString = Object.entries(c.options).find(([, o]) => o.type === 'string');
    if (firstString) {
      const r = await clawpod([...words, `--${firstString[0]}`, 'x', '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, texts[0]);
    }
  });
}

for (const [group, subs] of GROUPS) {
  test(`${group} --help and "clawpod help ${group}": every subcommand on one line each, with options, variables, exit codes, examples`, async () => {
    for (const args of [
      [group, '--help'],
      [group, '-h'],
      ['help', group],
    ]) {
      const r = await clawpod(args);
      assert.equal(r.code, 0, r.stderr);
      const text = r.stdout;
      assert.ok(text.startsWith(`usage: clawpod ${group} `), text);
      const cmds = section(text, 'commands');
      assert.deepEqual(
        cmds.map((l) =>
          l
            .trim()
            .split(/\s{2,}/)[0]
            .split(' ')
            .slice(0, 2)
            .join(' '),
        ),
        subs.map((s) => s.name),
        `each subcommand once:\n${text}`,
      );
      for (const s of subs)
        assert.ok(
          cmds.some((l) => l.includes(s.summary.split('\n')[0])),
          `${s.name}'s summary shown:\n${text}`,
        );
      assert.ok(
        section(text, 'options').some((l) => /^ {2}-h, --help\s/.test(l)),
        `options: -h, --help:\n${text}`,
      );
      for (const [name] of COMMON_ENV)
        assert.ok(
          section(text, 'environment').some((l) => l.trim().startsWith(`${name} `)),
          `environment ${name}:\n${text}`,
        );
      assert.ok(
        section(text, 'exit codes').some((l) => l.trim().startsWith('0 ')),
        `exit codes:\n${text}`,
      );
      const examples = section(text, 'examples');
      assert.ok(examples.length >= 2 && examples.every((l) => l.startsWith(`  clawpod ${group} `)), `two examples:\n${text}`);
      assert.ok(
        text.split('\n').every((l) => l.length <= 120),
        `lines fit a terminal:\n${text}`,
      );
    }
  });
}

test('clawpod alone, -h, --help and help print the usage naming every command and subcommand, exit 0', async () => {
  const texts: string[] = [];
  for (const args of [[], ['-h'], ['--help'], ['help']]) {
    const r = await clawpod(args);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^usage: clawpod COMMAND/);
    texts.push(r.stdout);
  }
  assert.equal(new Set(texts).size, 1);
  const cmds = section(texts[0], 'commands').map((l) => l.trim());
  for (const c of LEAVES) {
    const [top, sub] = c.name.split(' ');
    const line = cmds.find((l) => l.split(' ')[0] === top);
    assert.ok(line, `${top} is listed:\n${texts[0]}`);
    if (sub)
      assert.ok(
        line
          .split(/\s{2,}/)[0]
          .split(/[ |]/)
          .includes(sub),
        `${c.name} is listed:\n${line}`,
      );
  }
});

test('--version, -V and version print "clawpod X.Y.Z (commit HEX)" with the commit the binary was built from', async () => {
  const pkg = (await import('node:fs')).readFileSync(`${ROOT}/package.json`, 'utf8');
  const { version } = JSON.parse(pkg) as { version: string };
  const head = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  for (const args of [['--version'], ['-V'], ['version']]) {
    const r = await clawpod(args);
    assert.equal(r.code, 0, r.stderr);
    const m = r.stdout.match(/^clawpod (\d+\.\d+\.\d+) \(commit ([0-9a-f]{12})\)\n$/);
    assert.ok(m, `clawpod ${args.join(' ')}: ${JSON.stringify(r.stdout)}`);
    assert.equal(m[1], version);
    // Other commits may have landed since the bundle was built: then the one it names is an
    // ancestor of HEAD, never a made-up or foreign hash.
    if (m[2] !== head) {
      const anc = spawnSync('git', ['-C', ROOT, 'merge-base', '--is-ancestor', m[2], 'HEAD']);
      assert.equal(anc.status, 0, `commit ${m[2]} is HEAD (${head}) or one of its ancestors (rebuild: npm run build)`);
    }
  }
});

/** A slip: the option's name with two neighbouring letters swapped. */
function slip(name: string): string {
  const i = Math.floor(name.length / 2) - 1;
  return name.slice(0, i) + name[i + 1] + name[i] + name.slice(i + 2);
}

for (const c of LEAVES) {
  test(`${c.name}: an unknown option is one line naming the command's options, with a did-you-mean for a slip`, async () => {
    const words = c.name.split(' ');
    const r = await clawpod([...words, '--no-such-option']);
    assert.equal(r.code, 125, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, `one line:\n${r.stderr}`);
    assert.match(r.stderr, /^clawpod: unknown option "--no-such-option"/);
    for (const name of Object.keys(c.options)) assert.ok(r.stderr.includes(`--${name}`), `names --${name}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`clawpod ${c.name} --help`), `points at the help: ${r.stderr}`);
    const long = Object.keys(c.options).filter((n) => n.length >= 4 && n !== slip(n));
    for (const name of long) {
      const typo = slip(name);
      if (Object.hasOwn(c.options, typo)) continue;
      const t = await clawpod([...words, `--${typo}`]);
      assert.equal(t.code, 125, t.stderr);
      assert.ok(t.stderr.includes(`did you mean --${name}?`), `--${typo} suggests --${name}: ${t.stderr}`);
    }
    const short = await clawpod([...words, '-Z']);
    assert.equal(short.code, 125);
    assert.match(short.stderr, /^clawpod: unknown option "-Z" \(/);
  });
}

test('an unknown command or subcommand names the nearest one and where to look', async () => {
  for (const [args, near] of [
    [['exce'], 'exec'],
    [['doctr'], 'doctor'],
    [['polcy'], 'policy'],
    [['audti', 'show'], 'audit'],
    [['runs', 'lsit'], 'list'],
    [['runs', 'dif', 'last'], 'diff'],
    [['audit', 'verfy'], 'verify'],
    [['policy', 'chek', 'x'], 'check'],
    [['skills', 'lst'], 'list'],
  ] as const) {
    const r = await clawpod([...args]);
    assert.equal(r.code, 125, `clawpod ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
    assert.ok(r.stderr.includes(`did you mean ${near}?`), `clawpod ${args.join(' ')} suggests ${near}: ${r.stderr}`);
    assert.match(r.stderr, /--help|use /);
  }
  const far = await clawpod(['zzzzzz']);
  assert.equal(far.code, 125);
  assert.ok(!far.stderr.includes('did you mean'), far.stderr);
});

test("exec: a --help after the command is the command's own (it reaches the pod)", async () => {
  const r = await clawpod(['exec', '--', 'echo', 'asked', '--help']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'asked --help\n');
  const bare = await clawpod(['exec', 'echo', '-h']);
  assert.equal(bare.code, 0, bare.stderr);
  assert.equal(bare.stdout, '-h\n');
});

test('no help, version or usage error above was an internal error or a stack trace', () => {
  const all = seen.join('\n');
  assert.ok(seen.length > 50, `the tests above ran (${seen.length} commands)`);
  assert.ok(!/clawpod: internal error/.test(all), all.match(/.*internal error.*/)?.[0]);
  assert.ok(!/\n\s+at .+:\d+:\d+\)?\n/.test(all), 'no stack trace');
});
