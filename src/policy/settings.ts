// settings.git / settings.npm: which of a user's tool settings may enter a pod, and how they are
// written there. Pure: the schema refuses an explicit key with these rules, the host side
// (core/settings.ts) filters an inherited config with the same ones, so neither lets through what
// the other refuses. The rule of thumb: identity and behaviour go in; anything that holds or
// fetches a credential, routes traffic, or names a host program or path stays out.

/** A tool's settings in Rules: the user's own config (inherit), or key -> value. */
export type SettingsRule = 'inherit' | Record<string, string>;

export const SECRET_FIX = 'give a credential to the pod with secrets: (the proxy injects it; the pod never holds it)';
const PROXY_FIX = "clawpod sets the pod's proxy itself (HTTPS_PROXY points at the egress proxy); allow hosts with network.allow";

/** A URL carrying user:password@, or a bare token after //: a value that is a credential. */
const USERINFO_RE = /\/\/[^/\s@]+@/;
/** Words that name a credential, as whole parts of a key (so "init-author-name" is not "auth"). */
const SECRET_WORDS = new Set([
  'auth',
  'authtoken',
  'token',
  'password',
  'passwd',
  'pass',
  'secret',
  'otp',
  'credential',
  'credentials',
  'extraheader',
  'cookie',
  'cookiefile',
  'sslkey',
  'sslcert',
  'sslcertpasswordprotected',
  'askpass',
  'authorization',
]);

function secretWord(key: string): boolean {
  return key
    .toLowerCase()
    .split(/[-_.:/]+/)
    .some((w) => SECRET_WORDS.has(w));
}

/** Why this value may not be written anywhere, or null. */
function valueError(value: string): string | null {
  if (value.includes('\0')) return 'must not contain NUL bytes';
  if (USERINFO_RE.test(value)) return `holds a URL with user:password@ in it: ${SECRET_FIX}`;
  return null;
}

// ---- git ----

/** "section.name" or "section.sub.section.name", as git reads it (section and name case-insensitive). */
export interface GitKey {
  section: string;
  subsection: string | null;
  name: string;
}

export function parseGitKey(key: string): GitKey | null {
  const first = key.indexOf('.');
  const last = key.lastIndexOf('.');
  if (first <= 0 || last === key.length - 1) return null;
  const section = key.slice(0, first);
  const name = key.slice(last + 1);
  const subsection = first === last ? null : key.slice(first + 1, last);
  if (!/^[A-Za-z0-9-]+$/.test(section) || !/^[A-Za-z][A-Za-z0-9-]*$/.test(name)) return null;
  if (subsection !== null && (subsection === '' || /[\0\n]/.test(subsection))) return null;
  return { section, subsection, name };
}

// What `settings.git: inherit` copies from the user's global config: identity and everyday
// behaviour, nothing that runs a program, reaches a host, signs, or pulls in another file.
const GIT_INHERIT = new Set([
  'user.name',
  'user.email',
  'author.name',
  'author.email',
  'committer.name',
  'committer.email',
  'init.defaultbranch',
  'core.autocrlf',
  'core.eol',
  'core.safecrlf',
  'core.quotepath',
  'core.whitespace',
  'core.abbrev',
  'core.ignorecase',
  'core.precomposeunicode',
  'pull.rebase',
  'pull.ff',
  'merge.ff',
  'merge.conflictstyle',
  'rebase.autosquash',
  'rebase.autostash',
  'rebase.updaterefs',
  'push.default',
  'push.autosetupremote',
  'fetch.prune',
  'diff.algorithm',
  'diff.renames',
  'diff.colormoved',
  'color.ui',
  'column.ui',
  'log.date',
  'status.showuntrackedfiles',
  'branch.autosetuprebase',
  'branch.sort',
  'tag.sort',
  'rerere.enabled',
  'help.autocorrect',
  'advice.detachedhead',
  'commit.verbose',
]);

/** Why an explicit settings.git key/value may not be used, or null. */
export function gitSettingError(key: string, value: string): string | null {
  const k = parseGitKey(key);
  if (!k) return 'is not a git config key (section.name or section.subsection.name, e.g. user.email)';
  const section = k.section.toLowerCase();
  const name = k.name.toLowerCase();
  if (section === 'credential' || section === 'url' || secretWord(name) || (k.subsection !== null && secretWord(k.subsection))) {
    return `can hold credentials: ${SECRET_FIX}`;
  }
  if (section === 'include' || section === 'includeif') return 'pulls in another file; list the settings themselves';
  if (name === 'proxy' || name === 'gitproxy') return PROXY_FIX;
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(value)) return 'must not contain control characters other than tab and newline';
  return valueError(value);
}

/** Whether an inherited "section.name" (as `git config --list` spells it) may enter the pod. */
export function gitInheritable(key: string, value: string): boolean {
  return GIT_INHERIT.has(key.toLowerCase()) && gitSettingError(key, value) === null;
}

const gitQuote = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;

/** A git config file: every value quoted and escaped, so no value can start a line or section.
 *  Callers pass only entries that passed gitSettingError. */
export function renderGitConfig(entries: [string, string][]): string {
  const out: string[] = ["# Written by clawpod (the pod identity, and settings.git of the policy); the repository's config and ~/.gitconfig win over it."];
  for (const [key, value] of entries) {
    const k = parseGitKey(key);
    if (!k) throw new Error(`not a git key: ${JSON.stringify(key)}`);
    const sub = k.subsection === null ? '' : ` "${k.subsection.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    out.push(`[${k.section}${sub}]`, `\t${k.name} = ${gitQuote(value)}`);
  }
  return `${out.join('\n')}\n`;
}

// ---- npm ----

const NPM_KEY_RE = /^(?:@[a-z0-9][a-z0-9._-]*:)?[a-z][a-z0-9-]*$/;
const NPM_AUTH = new Set(['username', 'email', 'cert', 'key', 'certfile', 'keyfile', 'always-auth']);
const NPM_PROXY = new Set(['proxy', 'https-proxy', 'http-proxy', 'noproxy', 'no-proxy']);
// Where npm finds its config: clawpod points globalconfig at the pod's own /etc/npmrc.
const NPM_OWN = new Set(['globalconfig', 'userconfig']);
/** Words that name a credential in npm's (and its plugins') keys, beyond SECRET_WORDS. */
const NPM_SECRET_WORDS = new Set(['key', 'apikey', 'pat', 'bearer', 'jwt']);
// What `settings.npm: inherit` copies: npm's documented keys that hold a switch, a number, a
// name or a registry URL (checked with registryUrl). Nothing that holds a credential, runs a
// program, routes traffic or names a host path, except nodedir: node-gyp's headers, which are
// /usr's in the pod as on the host. An npmrc may hold anything (plugins read their own keys),
// so every other key stays out.
const NPM_INHERIT = new Set([
  'registry',
  'nodedir',
  'fund',
  'audit',
  'audit-level',
  'save',
  'save-exact',
  'save-prefix',
  'save-bundle',
  'engine-strict',
  'legacy-peer-deps',
  'strict-peer-deps',
  'package-lock',
  'package-lock-only',
  'lockfile-version',
  'format-package-lock',
  'progress',
  'loglevel',
  'color',
  'unicode',
  'update-notifier',
  'omit',
  'include',
  'ignore-scripts',
  'foreground-scripts',
  'prefer-offline',
  'prefer-online',
  'prefer-dedupe',
  'offline',
  'fetch-retries',
  'fetch-retry-factor',
  'fetch-retry-mintimeout',
  'fetch-retry-maxtimeout',
  'fetch-timeout',
  'maxsockets',
  'install-strategy',
  'install-links',
  'bin-links',
  'legacy-bundling',
  'global-style',
  'init-author-name',
  'init-author-email',
  'init-author-url',
  'init-license',
  'init-version',
  'init-type',
  'tag-version-prefix',
  'git-tag-version',
  'preid',
  'tag',
  'scope',
  'access',
  'workspaces-update',
  'include-workspace-root',
  'heading',
  'logs-max',
  'umask',
  'os',
  'cpu',
  'libc',
]);

const isRegistryKey = (key: string) => key === 'registry' || /^@[^:]+:registry$/.test(key);

/** A path segment that looks like a token (fury.io/TOKEN/..., a key in a proxy's path): a run
 *  of 12+ letters and digits, mixing both, and 16+ long or in both cases; or 24+ of them. */
export function tokenLikeSegment(segment: string): boolean {
  for (const run of segment.match(/[A-Za-z0-9]{12,}/g) ?? []) {
    if (run.length >= 24) return true;
    if (!/[0-9]/.test(run) || !/[A-Za-z]/.test(run)) continue;
    if (run.length >= 16 || (/[a-z]/.test(run) && /[A-Z]/.test(run))) return true;
  }
  return false;
}

/** A registry URL as the pod may have it: scheme://host[:port]/path. `clean` is it with
 *  userinfo, query and fragment cut off (`cut` names what went); `error` says why no part of it
 *  may enter the pod. Neither message quotes the value: the part cut off may be a token. */
export function registryUrl(value: string): { clean: string; cut: string[] } | { error: string } {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return { error: 'is not a URL (https://host/path/)' };
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return { error: 'is not an http(s) URL' };
  const cut = [...(u.username || u.password ? ['user:password@'] : []), ...(u.search ? ['query'] : []), ...(u.hash ? ['fragment'] : [])];
  let segments: string[];
  try {
    segments = u.pathname.split('/').map(decodeURIComponent);
  } catch {
    return { error: 'has a path that is not valid URL encoding' };
  }
  if (segments.some(tokenLikeSegment)) return { error: `has what looks like a token in its path: ${SECRET_FIX}` };
  return { clean: `${u.protocol}//${u.host}${u.pathname}`, cut };
}

/** Why an explicit settings.npm key/value may not be used, or null. */
export function npmSettingError(key: string, value: string): string | null {
  const bare = key.replace(/^@[^:]*:/, '');
  if (
    key.startsWith('//') ||
    key.startsWith('_') ||
    NPM_AUTH.has(key) ||
    secretWord(bare) ||
    bare
      .toLowerCase()
      .split(/[-_.:/]+/)
      .some((w) => NPM_SECRET_WORDS.has(w))
  ) {
    return `is an npm credential: ${SECRET_FIX}`;
  }
  if (NPM_PROXY.has(key)) return PROXY_FIX;
  if (NPM_OWN.has(key)) return 'is set by clawpod (the pod reads these settings from its /etc/npmrc)';
  if (!NPM_KEY_RE.test(key)) return 'is not an npm config key (lower-case words joined by -, or @scope:registry)';
  const bad = valueError(value);
  if (bad || !isRegistryKey(key)) return bad;
  const url = registryUrl(value);
  if ('error' in url) return url.error;
  if (url.cut.length > 0) return `has a ${url.cut.join(' and a ')} in its URL: ${SECRET_FIX}`;
  return null;
}

/** What an inherited key becomes in the pod: its value (a registry URL without its userinfo,
 *  query and fragment, `note` saying so), `drop` (why it is left out, for policy.deny), or null
 *  for a key inherit never carries. */
export function npmInherited(key: string, value: string): { value: string; note?: string } | { drop: string } | null {
  const scoped = /^@[a-z0-9][a-z0-9._-]*:registry$/.test(key);
  if (!NPM_INHERIT.has(key) && !scoped) return null;
  if (!isRegistryKey(key)) return npmSettingError(key, value) === null ? { value } : null;
  if (value.includes('\0')) return { drop: `settings.npm: ${key} was left out: it holds a NUL byte` };
  const url = registryUrl(value);
  if ('error' in url) return { drop: `settings.npm: ${key} was left out: its URL ${url.error}` };
  if (url.cut.length === 0) return { value };
  return { value: url.clean, note: `settings.npm: ${key}: the ${url.cut.join(' and ')} of its URL was left out: ${SECRET_FIX}` };
}

/** An npmrc: each value JSON-quoted (npm's ini reader parses "..." as JSON), one key a line. */
export function renderNpmrc(entries: [string, string][]): string {
  const out = ["; Written by clawpod from the policy's settings.npm; the project's and ~/.npmrc win over it."];
  for (const [key, value] of entries) {
    if (!NPM_KEY_RE.test(key)) throw new Error(`not an npm key: ${JSON.stringify(key)}`);
    out.push(`${key}=${JSON.stringify(value)}`);
  }
  return `${out.join('\n')}\n`;
}

/** key -> value of an npmrc's top level, as npm's ini reader sees it (sections and arrays are
 *  left out: neither is an npm setting clawpod carries). Later lines win. */
export function parseNpmrc(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let inSection = false;
  for (const line of text.split(/[\r\n]+/)) {
    if (/^\s*([;#]|$)/.test(line)) continue;
    if (/^\[[^\]]*\]\s*$/.test(line)) {
      inSection = true;
      continue;
    }
    const m = line.match(/^([^=]+)=(.*)$/);
    if (!m || inSection) continue;
    const key = iniValue(m[1]);
    if (key.endsWith('[]')) continue;
    out.set(key, iniValue(m[2]));
  }
  return out;
}

/** ini's unquoting: "..." is JSON, '...' is literal, else up to an unescaped ; or #. */
function iniValue(raw: string): string {
  const v = raw.trim();
  if (v.length > 1 && (v[0] === '"' || v[0] === "'") && v.at(-1) === v[0]) {
    const inner = v[0] === "'" ? v.slice(1, -1) : v;
    try {
      const parsed = JSON.parse(inner);
      return typeof parsed === 'string' ? parsed : String(parsed);
    } catch {
      return v[0] === "'" ? inner : v;
    }
  }
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c === '\\' && i + 1 < v.length && '\\;#'.includes(v[i + 1])) out += v[++i];
    else if (c === ';' || c === '#') break;
    else out += c;
  }
  return out.trim();
}
