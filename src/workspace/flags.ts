// Paths whose change can run code without anyone running "the code": a tool that opens the
// folder, enters it, commits in it or pushes it executes or obeys them. Review shows these first,
// whatever the pod did to them (added, modified, deleted, chmod), so they are not lost in a long
// diff. The list is deliberately about execution on open/enter/commit/push and agent steering:
//   - not Makefile, package.json scripts, test files: those run when the user runs the project,
//     which is exactly what reviewing the diff is for;
//   - not .gitattributes / .gitmodules: an attribute only names a filter or diff driver, whose
//     command must come from git config (which a pod cannot reach unless .git is included), and
//     git ignores `update = !cmd` in .gitmodules.
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Change, EntryInfo } from './types.js';

export interface Flag {
  path: string;
  kind: Change['kind'];
  /** Why the path matters, in a few words. */
  why: string;
  /** True for what runs code on the host by itself (git hooks and config). */
  loud: boolean;
}

/** A whole directory (any depth) whose contents tools act on. */
const DIRS: Record<string, string> = {
  '.vscode': 'VS Code runs its tasks and obeys its settings when the folder opens',
  '.idea': 'JetBrains IDEs run its startup tasks and run configurations',
  '.devcontainer': 'dev containers run its commands when the folder opens',
  '.claude': 'Claude Code runs the hooks and obeys the settings in it',
  '.cursor': 'Cursor starts the MCP servers and follows the rules in it',
  '.husky': 'husky runs its hooks at the next git commit',
  '.githooks': 'the usual core.hooksPath: git runs its hooks once that is set',
  '.cargo': 'cargo obeys its config.toml (rustc-wrapper, runner, aliases) in this folder and below',
  '.gemini': 'Gemini CLI obeys the settings, MCP servers and instructions in it',
  '.zed': 'Zed runs its tasks and starts the language servers its settings name',
  '.mvn': 'Maven obeys its jvm.config, maven.config and extensions on every build',
};

/** Single files (any depth), by name. */
const FILES: Record<string, string> = {
  '.envrc': 'direnv runs it when a shell enters the folder',
  '.mcp.json': 'coding agents start the MCP servers it names',
  '.npmrc': 'npm obeys it (it can name the programs npm runs)',
  '.yarnrc': 'yarn obeys it (it can name the programs yarn runs)',
  '.yarnrc.yml': 'yarn runs the yarnPath it names on every yarn command',
  '.pnpmfile.cjs': 'pnpm runs it on install',
  '.pre-commit-config.yaml': 'pre-commit runs its hooks at the next git commit',
  'lefthook.yml': 'lefthook runs its hooks at the next git commit',
  '.lefthook.yml': 'lefthook runs its hooks at the next git commit',
  'mise.toml': 'mise runs its hooks when a shell enters the folder',
  '.mise.toml': 'mise runs its hooks when a shell enters the folder',
  '.gitlab-ci.yml': "GitLab CI runs it with the repository's secrets when pushed",
  'CLAUDE.md': 'coding agents follow the instructions in it',
  'AGENTS.md': 'coding agents follow the instructions in it',
  'CLAUDE.local.md': 'coding agents follow the instructions in it',
  '.nvim.lua': 'Neovim runs it when opened here (exrc)',
  '.exrc': 'vim and Neovim run it when opened here (exrc)',
  'bunfig.toml': 'bun obeys it (preload scripts run on every bun command)',
  '.cursorrules': 'Cursor follows the instructions in it',
};

/** A path component that makes git treat the directory as repository metadata. */
export function isGitSegment(seg: string): boolean {
  return seg.length === 4 && seg.toLowerCase() === '.git';
}

/** A directory name host tools read from wherever it is (.vscode, .idea, ...). */
export function isFlaggedDirName(name: string): boolean {
  return Object.hasOwn(DIRS, name);
}

/** True when any component of the relpath is `.git` (the workspace's own, a submodule's, a worktree's). */
export function isGitPath(rel: string): boolean {
  if (!rel.toLowerCase().includes('.git')) return false;
  return rel.split('/').some(isGitSegment);
}

function gitWhy(segs: string[]): { why: string; loud: boolean } {
  const at = segs.findIndex(isGitSegment);
  const below = segs.slice(at + 1);
  if (below.length === 0) return { why: 'git repository metadata', loud: false };
  if (below.includes('hooks')) return { why: 'a git hook: git runs it on the host', loud: true };
  const name = below[below.length - 1];
  if (name === 'config' || name === 'config.worktree') {
    return { why: 'git config: core.fsmonitor, core.pager, aliases and more run programs on the host', loud: true };
  }
  if (name === 'attributes' || name === 'info') return { why: 'git attributes: choose the filters and diff drivers git runs', loud: true };
  return { why: 'git repository metadata (history, refs, index)', loud: false };
}

/** Why a change at `rel` matters, or undefined. `hooksDir`: see hooksDirOf. */
type Why = { why: string; loud: boolean };

function whyFlag(rel: string, after: EntryInfo | undefined, hooksDir?: string): Why | undefined {
  const segs = rel.split('/');
  if (segs.some(isGitSegment)) return gitWhy(segs);
  if (hooksDir !== undefined && (hooksDir === '' || rel === hooksDir || rel.startsWith(`${hooksDir}/`))) {
    return { why: "a git hook (under the repository's core.hooksPath): git runs it on the host", loud: true };
  }
  for (const s of segs.slice(0, -1)) if (Object.hasOwn(DIRS, s)) return { why: DIRS[s], loud: false };
  const name = segs[segs.length - 1];
  if (Object.hasOwn(DIRS, name)) return { why: DIRS[name], loud: false };
  if (Object.hasOwn(FILES, name)) return { why: FILES[name], loud: false };
  const gh = segs.indexOf('.github');
  if (gh !== -1 && segs[gh + 1] === 'workflows') {
    return { why: "GitHub Actions runs it with the repository's secrets when pushed", loud: false };
  }
  if (after?.t === 'l' && after.target !== undefined) return linkWhy(rel, after.target);
  return undefined;
}

/** A symlink that leads out of the workspace or into git metadata. */
function linkWhy(rel: string, target: string): { why: string; loud: boolean } | undefined {
  if (target.startsWith('/')) return { why: 'a symlink out of the workspace (to an absolute path)', loud: false };
  let depth = rel.split('/').length - 1;
  for (const seg of target.split('/')) {
    if (seg === '..') depth--;
    else if (seg !== '' && seg !== '.') depth++;
    if (depth < 0) return { why: 'a symlink out of the workspace', loud: false };
  }
  if (target.split('/').some(isGitSegment)) return { why: 'a symlink into git metadata', loud: true };
  return undefined;
}

/**
 * Flags for a set of changes. `exists` answers whether a relpath is there after apply, to spot a
 * directory the pod turned into a git repository under another name (HEAD + config + objects):
 * git run inside it obeys that config.
 */
export function flagChanges(changes: Change[], exists: (rel: string) => boolean, hooksDir?: string): Flag[] {
  const flags: Flag[] = [];
  const repos = new Set<string>();
  const byPath = new Map(changes.map((c) => [c.path, c]));
  for (const c of changes) {
    const w = whyFlag(c.path, c.after, hooksDir);
    if (w !== undefined) flags.push({ path: c.path, kind: c.kind, ...w });
    const slash = c.path.lastIndexOf('/');
    const name = c.path.slice(slash + 1);
    if (name === 'HEAD' || name === 'config' || name === 'objects') repos.add(slash === -1 ? '' : c.path.slice(0, slash));
  }
  for (const dir of repos) {
    const p = (n: string) => (dir === '' ? n : `${dir}/${n}`);
    if (dir.split('/').some(isGitSegment)) continue; // already flagged as git metadata
    if (exists(p('HEAD')) && exists(p('config')) && exists(p('objects'))) {
      const why = 'makes its directory a git repository: git run there obeys this config';
      flags.push({ path: p('config'), kind: byPath.get(p('config'))?.kind ?? 'modified', why, loud: true });
    }
  }
  return flags.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The workspace's core.hooksPath, as a relpath inside it ('' for the root itself), when its own
 * .git/config sets one there: git runs whatever the pod puts in that directory. Read with a
 * small parser of git's syntax (sections, case-insensitive keys, quotes, comments; the last
 * value wins), never by running git. A value outside the workspace is the user's own business.
 */
export function hooksDirOf(workspaceRoot: string): string | undefined {
  const cfg = join(workspaceRoot, '.git', 'config');
  let text: string;
  try {
    if (!statSync(cfg).isFile()) return undefined; // a FIFO would hang the read; a symlinked .git is git's too
    text = readFileSync(cfg, 'utf8');
  } catch {
    return undefined;
  }
  let section = '';
  let value: string | undefined;
  for (const raw of text.split('\n')) {
    const head = /^\s*\[\s*([A-Za-z0-9.-]+)/.exec(raw);
    if (head) section = head[1].toLowerCase();
    const body = head ? raw.slice(raw.indexOf(']') + 1) : raw;
    const kv = /^\s*hookspath\s*=(.*)$/i.exec(body);
    if (section === 'core' && kv) value = gitConfigValue(kv[1]);
  }
  if (value === undefined || value === '' || value.startsWith('~')) return undefined;
  const rel = relative(resolve(workspaceRoot), resolve(workspaceRoot, value));
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
  return rel.split(sep).join('/');
}

/** A git config value: quotes removed, \\ \" \t \n unescaped, a # or ; comment outside quotes cut. */
function gitConfigValue(s: string): string {
  let out = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\' && i + 1 < s.length) {
      const n = s[++i];
      out += n === 't' ? '\t' : n === 'n' ? '\n' : n;
      continue;
    }
    if (ch === '"') {
      quoted = !quoted;
      continue;
    }
    if (!quoted && (ch === '#' || ch === ';')) break;
    out += ch;
  }
  return out.trim();
}
