// The user's tool settings for one run, read on the host and made into the pod's system git config
// (/etc/gitconfig) and global npmrc (/etc/npmrc). An inherited config is filtered key by key with
// the schema's own rules (policy/settings.ts); no value that holds a secret's value enters the pod.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Rules } from '../policy/types.js';
import { gitInheritable, npmInherited, parseNpmrc, renderGitConfig, renderNpmrc, type SettingsRule } from '../policy/settings.js';
import { UserError } from './errors.js';

/** Where the pod reads them: the pod's own ~/.gitconfig, ~/.npmrc and the project's win. */
export const POD_GITCONFIG = '/etc/gitconfig';
export const POD_NPMRC = '/etc/npmrc';
// A commit made in a pod says so, rather than failing for want of an identity.
const POD_IDENTITY: [string, string][] = [
  ['user.name', 'clawpod pod'],
  ['user.email', 'pod@clawpod.invalid'],
];

export interface PodSettings {
  /** Files for the pod's /etc, by name; data only, never a host path. */
  etc: Record<string, string>;
  /** Variables that make the pod's tools read them. */
  env: Record<string, string>;
  /** The keys carried, for run.start (the values are in the pod, not in the log). */
  keys: { git: string[]; npm: string[] };
  /** Inherited settings left out because they held a secret's value (audit policy.deny). */
  dropped: string[];
}

export interface SettingsDeps {
  /** The invoking user's home (the context's: $HOME, else the password database's). */
  home: string;
  env: NodeJS.ProcessEnv;
  readFile(p: string): string;
  /** `git config --global --list -z` output for home; null when git is not installed. */
  gitGlobal?: (home: string, env: NodeJS.ProcessEnv) => string | null;
}

type Entries = [string, string][];

/** The pod's settings for these rules; throws a one-line UserError for an explicit value that
 *  holds a secret's value (redact: the run's redactor, which knows every spelling). */
export function resolveSettings(rules: Rules, redact: (s: string) => string, deps: SettingsDeps): PodSettings {
  const dropped: string[] = [];
  const keep = (tool: string, rule: SettingsRule | undefined, inherited: () => Entries): Entries => {
    if (rule === undefined) return [];
    const entries = rule === 'inherit' ? inherited() : Object.entries(rule);
    return entries.filter(([key, value]) => {
      const secret = redact(value).match(/\[secret:([^\]]+)\]/)?.[1];
      if (!secret) return true;
      if (rule === 'inherit') {
        dropped.push(`settings.${tool}: ${key} was left out: it holds the value of secret ${secret}`);
        return false;
      }
      throw new UserError(
        `policy ${rules.source}: settings.${tool}: ${key} holds the value of secret ${secret} (remove it: a secret reaches the pod only as a placeholder)`,
      );
    });
  };
  const git = keep('git', rules.settings?.git, () => inheritedGit(deps));
  const npm = keep('npm', rules.settings?.npm, () => inheritedNpm(deps, dropped));
  const named = new Set(git.map(([k]) => k.toLowerCase()));
  const etc: Record<string, string> = { gitconfig: renderGitConfig([...POD_IDENTITY.filter(([k]) => !named.has(k)), ...git]) };
  const env: Record<string, string> = {};
  if (rules.settings?.npm !== undefined) {
    etc.npmrc = renderNpmrc(npm);
    // In place of /usr/etc/npmrc, whose inheritable keys were merged into this one.
    env.NPM_CONFIG_GLOBALCONFIG = POD_NPMRC;
  }
  return { etc, env, keys: { git: git.map(([k]) => k), npm: npm.map(([k]) => k) }, dropped };
}

/** The allowlisted keys of the user's global git config (~/.gitconfig, ~/.config/git/config). */
function inheritedGit(deps: SettingsDeps): Entries {
  const xdg = deps.env.XDG_CONFIG_HOME || path.join(deps.home, '.config');
  const files = [deps.env.GIT_CONFIG_GLOBAL || path.join(deps.home, '.gitconfig'), path.join(xdg, 'git', 'config')];
  if (!files.some((f) => fs.existsSync(f))) return [];
  const out = (deps.gitGlobal ?? gitGlobalList)(deps.home, deps.env);
  if (out === null) {
    throw new UserError(
      'settings.git: inherit reads your git config with git, which is not installed here (install git, or list the settings: settings.git: { user.name: ..., user.email: ... })',
    );
  }
  const entries: Entries = [];
  for (const item of out.split('\0')) {
    if (!item) continue;
    const nl = item.indexOf('\n');
    const [key, value] = nl < 0 ? [item, 'true'] : [item.slice(0, nl), item.slice(nl + 1)];
    if (gitInheritable(key, value)) entries.push([key, value]);
  }
  return entries;
}

/** git itself parses the config (quoting, continuation lines, includes), away from any
 *  repository (cwd /, a clean environment): the workspace's own .git/config is never read. */
function gitGlobalList(home: string, env: NodeJS.ProcessEnv): string | null {
  const clean: Record<string, string> = { HOME: home, PATH: env.PATH || '/usr/bin:/bin', GIT_CONFIG_NOSYSTEM: '1' };
  for (const k of ['XDG_CONFIG_HOME', 'GIT_CONFIG_GLOBAL']) if (env[k]) clean[k] = env[k] as string;
  const r = spawnSync('git', ['config', '--global', '--list', '-z'], { cwd: '/', env: clean, encoding: 'utf8', timeout: 10_000, maxBuffer: 4 << 20 });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return null;
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).split('\n')[0];
    throw new UserError(`settings.git: inherit: git could not read your config: ${why} (fix it, or list the settings in the policy)`);
  }
  return r.stdout;
}

/** The inheritable keys of npm's global npmrc (beside node, as npm finds it) and ~/.npmrc over it;
 *  a registry URL cut short or left out is said in dropped (policy.deny). */
function inheritedNpm(deps: SettingsDeps, dropped: string[]): Entries {
  const merged = new Map<string, string>();
  const globalrc = path.join(path.dirname(path.dirname(process.execPath)), 'etc', 'npmrc');
  const userrc = deps.env.NPM_CONFIG_USERCONFIG || path.join(deps.home, '.npmrc');
  for (const f of [globalrc, userrc]) {
    let text: string;
    try {
      text = deps.readFile(f);
    } catch {
      continue;
    }
    for (const [k, v] of parseNpmrc(text)) merged.set(k, v);
  }
  const entries: Entries = [];
  for (const [key, value] of merged) {
    const got = npmInherited(key, value);
    if (got === null) continue;
    if ('drop' in got) {
      dropped.push(got.drop);
      continue;
    }
    if (got.note) dropped.push(got.note);
    entries.push([key, got.value]);
  }
  return entries;
}
