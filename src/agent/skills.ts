// Skills in the Agent Skills format: folders with a SKILL.md whose front matter names and
// describes them. Discovery only reads and reports; a skill can ask for hosts and secrets but
// only ever gets what the policy already allows, so installing a skill never widens a pod.
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, realpathSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { matchHost, parseHostPattern, type HostPattern } from '../policy/hostpattern.js';
import type { Rules } from '../policy/types.js';

export interface Skill {
  name: string;
  description: string;
  /** Host path of the skill folder (realpath). */
  dir: string;
  source: 'user' | 'workspace';
  /** What the front matter declares. */
  asks: { hosts: string[]; secrets: string[] };
  /** The part of asks the policy already allows. */
  gets: { hosts: string[]; secrets: string[] };
  /** Set on a workspace skill that hides the user skill of the same name: that skill's dir. */
  overrides?: string;
}

/** A skill that was skipped, and why, as one line. */
export interface SkillProblem {
  dir: string;
  problem: string;
}

export interface DiscoverOptions {
  /** $CLAWPOD_HOME/skills */
  userDir: string;
  /** The workspace; its skills live in <workspace>/.clawpod/skills. */
  workspace: string | null;
  rules: Rules;
}

export const SKILL_FILE_MAX_BYTES = 64 * 1024;
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;
const SECRET_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DESCRIPTION_MAX = 1024;

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/**
 * SKILL.md's text, or why it cannot be used. Opened with O_NOFOLLOW and checked again on the
 * open descriptor, so a file swapped for a symlink or a FIFO after the lstat is still refused.
 */
function readSkillFile(dir: string): { text: string } | { problem: string } {
  const file = join(dir, 'SKILL.md');
  const st = lstatOrNull(file);
  if (!st) return { problem: 'has no SKILL.md' };
  if (st.isSymbolicLink()) return { problem: 'SKILL.md is a symlink (it must be a plain file in the skill folder)' };
  if (!st.isFile()) return { problem: 'SKILL.md is not a regular file' };
  if (st.size > SKILL_FILE_MAX_BYTES) return { problem: `SKILL.md is larger than ${SKILL_FILE_MAX_BYTES / 1024} KiB` };
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    return { problem: `SKILL.md cannot be opened (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile() || fst.size > SKILL_FILE_MAX_BYTES) return { problem: 'SKILL.md changed while being read' };
    const buf = Buffer.alloc(SKILL_FILE_MAX_BYTES + 1);
    let len = 0;
    for (let n = 1; n > 0 && len < buf.length; len += n) n = readSync(fd, buf, len, buf.length - len, null);
    if (len > SKILL_FILE_MAX_BYTES) return { problem: `SKILL.md is larger than ${SKILL_FILE_MAX_BYTES / 1024} KiB` };
    return { text: buf.subarray(0, len).toString('utf8') };
  } finally {
    closeSync(fd);
  }
}

type FrontMatter = { name: string; description: string; hosts: string[]; secrets: string[] };

function stringList(v: unknown, field: string, valid: (s: string) => string | null): string[] | string {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) return `front matter "${field}" must be a list of strings`;
  for (const s of v as string[]) {
    const problem = valid(s);
    if (problem) return `front matter "${field}": ${problem}`;
  }
  return [...new Set(v as string[])];
}

/** The front matter between the leading "---" lines, checked, or why it is unusable. */
function parseFrontMatter(text: string, folder: string): FrontMatter | string {
  const m = /^\uFEFF?---\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/.exec(text);
  if (!m) return 'SKILL.md has no front matter (it must start with a "---" line and end it with another)';
  let data: unknown;
  try {
    data = YAML.parse(m[1]);
  } catch (e) {
    return `SKILL.md front matter is not valid YAML: ${String((e as Error).message).split('\n')[0]}`;
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'SKILL.md front matter is not a mapping';
  const fm = data as Record<string, unknown>;
  if (typeof fm.name !== 'string' || fm.name === '') return 'SKILL.md has no name';
  if (!NAME_RE.test(fm.name)) return `SKILL.md name ${JSON.stringify(fm.name)} is not lower-case letters, digits and "-" (at most 64)`;
  if (fm.name !== folder) return `SKILL.md name ${JSON.stringify(fm.name)} differs from its folder name ${JSON.stringify(folder)}`;
  // Collapsed to one line: the description goes into the system prompt and a table.
  const description = typeof fm.description === 'string' ? fm.description.replace(/\s+/g, ' ').trim() : '';
  if (description === '') return 'SKILL.md has no description';
  if (description.length > DESCRIPTION_MAX) return `SKILL.md description is longer than ${DESCRIPTION_MAX} characters`;
  const hosts = stringList(fm.hosts, 'hosts', (h) => {
    try {
      parseHostPattern(h);
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  });
  if (typeof hosts === 'string') return hosts;
  const secrets = stringList(fm.secrets, 'secrets', (s) => (SECRET_NAME_RE.test(s) ? null : `${JSON.stringify(s)} is not a secret name`));
  if (typeof secrets === 'string') return secrets;
  return { name: fm.name, description, hosts, secrets };
}

/** Whether one pattern list matches host:port; a pattern that throws counts as onThrow. */
function anyMatch(patterns: string[], host: string, port: number, onThrow: boolean, only?: HostPattern['kind']): boolean {
  return patterns.some((p) => {
    try {
      return (only === undefined || parseHostPattern(p).kind === only) && matchHost(p, host, port);
    } catch {
      return onThrow;
    }
  });
}

/**
 * Whether the policy lets the pod reach what an asked pattern names. A wildcard ask is probed
 * with a subdomain and only a wildcard allow may cover it: an exact allow is one host, never
 * "every subdomain". A deny that throws counts as a match (fail closed).
 */
export function hostGranted(asked: string, rules: Rules): boolean {
  const p = parseHostPattern(asked);
  const port = p.port ?? 443;
  const host = p.kind === 'wildcard' ? `skill-probe.${p.host}` : p.host;
  const allowKind = p.kind === 'wildcard' ? 'wildcard' : undefined;
  return anyMatch(rules.network.allow, host, port, false, allowKind) && !anyMatch(rules.network.deny, host, port, true);
}

function grants(fm: FrontMatter, rules: Rules): Skill['gets'] {
  const defined = new Set(rules.secrets.map((s) => s.name));
  return { hosts: fm.hosts.filter((h) => hostGranted(h, rules)), secrets: fm.secrets.filter((s) => defined.has(s)) };
}

/**
 * The skills directly under root. A missing root means none. Each entry must be a real
 * directory: a symlink could point the read-only /skills mount at any host directory.
 */
function scanRoot(root: string, source: Skill['source'], rules: Rules): { skills: Skill[]; problems: SkillProblem[] } {
  const skills: Skill[] = [];
  const problems: SkillProblem[] = [];
  let names: string[];
  try {
    names = readdirSync(root).sort();
  } catch {
    return { skills, problems };
  }
  for (const folder of names) {
    const dir = join(root, folder);
    const st = lstatOrNull(dir);
    if (!st || folder.startsWith('.')) continue;
    if (st.isSymbolicLink()) {
      problems.push({ dir, problem: 'skill folder is a symlink (it must be a real directory)' });
      continue;
    }
    if (!st.isDirectory()) continue; // a README next to the skills is not a skill
    const file = readSkillFile(dir);
    const fm = 'text' in file ? parseFrontMatter(file.text, folder) : file.problem;
    if (typeof fm === 'string') {
      problems.push({ dir, problem: fm });
      continue;
    }
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      problems.push({ dir, problem: 'skill folder vanished while being read' });
      continue;
    }
    const asks = { hosts: fm.hosts, secrets: fm.secrets };
    skills.push({ name: fm.name, description: fm.description, dir: real, source, asks, gets: grants(fm, rules) });
  }
  return { skills, problems };
}

/** Why the workspace skills root is unusable: a workspace is untrusted, its links are refused. */
function workspaceRootProblem(workspace: string): SkillProblem | null {
  for (const part of [join(workspace, '.clawpod'), join(workspace, '.clawpod', 'skills')]) {
    const st = lstatOrNull(part);
    if (!st) return null;
    if (st.isSymbolicLink()) return { dir: part, problem: 'is a symlink; workspace skills are not read through links' };
    if (!st.isDirectory()) return { dir: part, problem: 'is not a directory' };
  }
  return null;
}

export function discoverSkills(opts: DiscoverOptions): { skills: Skill[]; problems: SkillProblem[] } {
  const user = scanRoot(opts.userDir, 'user', opts.rules);
  const problems = [...user.problems];
  const byName = new Map(user.skills.map((s) => [s.name, s]));
  if (opts.workspace !== null) {
    const rootProblem = workspaceRootProblem(opts.workspace);
    if (rootProblem) problems.push(rootProblem);
    else {
      const ws = scanRoot(join(opts.workspace, '.clawpod', 'skills'), 'workspace', opts.rules);
      problems.push(...ws.problems);
      // The workspace's skill is the more specific one for this task, so it wins.
      for (const s of ws.skills) {
        const hidden = byName.get(s.name);
        byName.set(s.name, hidden ? { ...s, overrides: hidden.dir } : s);
      }
    }
  }
  const skills = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { skills, problems };
}

export function skillsPrompt(skills: Skill[]): string {
  if (skills.length === 0) return '';
  const lines = skills.map((s) => `- ${s.name}: ${s.description}`);
  return `Skills (read /skills/<name>/SKILL.md when one fits the task):\n${lines.join('\n')}\n`;
}

export function skillMounts(skills: Skill[]): { host: string; path: string; mode: 'ro' }[] {
  return skills.map((s) => ({ host: s.dir, path: `/skills/${s.name}`, mode: 'ro' as const }));
}

function needs(x: { hosts: string[]; secrets: string[] }): string {
  const hosts = x.hosts.length ? x.hosts.join(', ') : 'none';
  const secrets = x.secrets.length ? x.secrets.join(', ') : 'none';
  return `hosts ${hosts}; secrets ${secrets}`;
}

/** For `clawpod skills list`: one block per skill, then the skipped ones with the reason. */
export function skillsTable(skills: Skill[], problems: SkillProblem[]): string {
  const out: string[] = [];
  if (skills.length === 0) out.push('No skills found.');
  for (const s of skills) {
    const source = s.overrides ? `${s.source}, overrides the user skill at ${s.overrides}` : s.source;
    out.push(`${s.name}  (${source})`, `  ${s.description}`, `  dir:  ${s.dir}`);
    out.push(`  asks: ${needs(s.asks)}`, `  gets: ${needs(s.gets)}`);
    const withheld = [...s.asks.hosts.filter((h) => !s.gets.hosts.includes(h)), ...s.asks.secrets.filter((n) => !s.gets.secrets.includes(n))];
    if (withheld.length) out.push(`  not granted by the policy: ${withheld.join(', ')}`);
  }
  if (problems.length) out.push('', 'Skipped:', ...problems.map((p) => `  ${p.dir}: ${p.problem}`));
  return `${out.join('\n')}\n`;
}

/** For `clawpod skills list --json`: each skill with where it came from and what the policy
 *  withholds of what it asks (its problems), then the folders skipped and why. */
export function skillsJson(skills: Skill[], problems: SkillProblem[]) {
  return {
    skills: skills.map((s) => {
      const withheld = [
        ...s.asks.hosts.filter((h) => !s.gets.hosts.includes(h)).map((h) => `host ${h} is not granted by the policy`),
        ...s.asks.secrets.filter((n) => !s.gets.secrets.includes(n)).map((n) => `secret ${n} is not granted by the policy`),
      ];
      return {
        name: s.name,
        description: s.description,
        from: s.source,
        path: s.dir,
        ...(s.overrides ? { overrides: s.overrides } : {}),
        asks: s.asks,
        gets: s.gets,
        problems: withheld,
      };
    }),
    problems: problems.map((p) => ({ path: p.dir, problem: p.problem })),
  };
}
