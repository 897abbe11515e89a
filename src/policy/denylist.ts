// The credential deny list: host paths no workspace or mount may be, sit inside, or contain.
// It covers every account on the host (a root clawpod can read every home), the host's secret
// stores, and clawpod's own state. Pure: the password database comes in as text.
import { posix } from 'node:path';

export interface HostPathDeps {
  home: string;
  /** $CLAWPOD_HOME: run store, audit logs and diffs must never be reachable from a pod. */
  clawpodHome: string;
  /** Like fs.realpathSync: resolves every symlink; throws if the path does not exist. */
  realpath(p: string): string;
  /** Text of /etc/passwd: every home in it gets the credential list. */
  passwd?: string;
  /** $SUDO_USER: the human behind a sudo'd clawpod, whose home matters most. */
  sudoUser?: string;
  /** Like lstat without throwing: lets the list skip realpath (and its costly throw) for the
   *  hundreds of credential paths that do not exist. */
  exists?(p: string): boolean;
}

// Where credentials live relative to a home. ~/.clawpod is every user's default state dir.
export const CREDENTIAL_NAMES: readonly string[] = [
  '.ssh',
  '.gnupg',
  '.aws',
  '.azure',
  '.kube',
  '.docker',
  '.netrc',
  '.git-credentials',
  '.npmrc',
  '.pypirc',
  '.pgpass',
  '.vault-token',
  '.password-store',
  '.config/gh',
  '.config/hub',
  '.config/gcloud',
  '.config/clawpod',
  '.config/git/credentials',
  '.local/share/keyrings',
  '.cargo/credentials',
  '.cargo/credentials.toml',
  '.clawpod',
];
/** The caller's home, shown with ~ the way the user knows it. */
export const DENIED_HOME_PATHS: readonly string[] = CREDENTIAL_NAMES.map((n) => `~/${n}`);
export const DENIED_SYSTEM_PATHS: readonly string[] = [
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/run/podman',
  '/run/containerd',
  '/var/run/containerd',
  '/etc/shadow',
  '/etc/gshadow',
  '/etc/sudoers',
  '/etc/sudoers.d',
  '/etc/ssh',
  '/etc/ssl/private',
  '/run/clawpod',
  '/run/user',
  '/run/secrets',
  '/var/run/secrets',
  '/proc',
  '/sys',
  '/dev',
  '/boot',
  // Container and cluster state (volumes, images, kubelet and service-account secrets), TLS keys.
  '/var/lib/docker',
  '/var/lib/containerd',
  '/var/lib/kubelet',
  '/etc/kubernetes',
  '/etc/docker',
  '/etc/letsencrypt',
  '/etc/pki',
  '/var/lib/private',
];
// Names that say "credentials" wherever they sit: a home the password database does not list
// (LDAP, a copied home) is still refused at and below them.
const CREDENTIAL_DIR_NAMES = new Set(['.ssh', '.gnupg', '.aws', '.kube', '.password-store']);

/** child is strictly below parent (both absolute, normalized). */
export function isInside(child: string, parent: string): boolean {
  if (parent === '/') return child !== '/';
  return child.startsWith(`${parent}/`);
}

/** posix.normalize without a trailing slash ("/var/www/" -> "/var/www"). */
function norm(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** user -> home for every well-formed line with an absolute home, as getent passwd lists them. */
export function passwdHomes(text: string): Map<string, string> {
  const homes = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 7 || !f[0] || !f[5].startsWith('/')) continue;
    if (!homes.has(f[0])) homes.set(f[0], norm(f[5]));
  }
  return homes;
}

interface DeniedPath {
  /** How messages show it (~/.ssh, /home/alice/.ssh). */
  display: string;
  /** Every absolute form it may take: as written and as resolved. */
  forms: string[];
}

/** Symlinks resolved as far as the path exists: a denied path that does not exist yet (no
 *  ~/.aws today) is still resolved through its parents, so a symlinked home (/home ->
 *  /var/home) cannot hide it from the ancestor check. Parents are cached per call. */
function resolver(deps: HostPathDeps): (p: string) => string {
  // path -> [resolved, exists]; a parent that does not exist has no children to look up.
  const cache = new Map<string, [string, boolean]>();
  const resolve = (p: string): [string, boolean] => {
    const hit = cache.get(p);
    if (hit) return hit;
    // Paths here are normalized: plain string cuts, not posix.dirname (this runs for hundreds).
    const cut = p.lastIndexOf('/');
    let r: [string, boolean];
    if (p === '/') r = [p, true];
    else {
      const [up, upExists] = resolve(cut === 0 ? '/' : p.slice(0, cut));
      let real: string | null = null;
      if (upExists && (!deps.exists || deps.exists(p))) {
        try {
          real = deps.realpath(p);
        } catch {
          /* dangling */
        }
      }
      r = real === null ? [under(up, p.slice(cut + 1)), false] : [real, true];
    }
    cache.set(p, r);
    return r;
  };
  return (p) => resolve(p)[0];
}

/** Every home whose credentials are denied: the caller's, $SUDO_USER's, root's, all of passwd. */
function deniedHomes(deps: HostPathDeps): string[] {
  const listed = passwdHomes(deps.passwd ?? '');
  const homes = new Set<string>([norm(deps.home), '/root', ...listed.values()]);
  const sudoHome = deps.sudoUser ? listed.get(deps.sudoUser) : undefined;
  if (sudoHome) homes.add(sudoHome);
  return [...homes];
}

const under = (dir: string, name: string): string => (dir === '/' ? `/${name}` : `${dir}/${name}`);

function deniedPaths(deps: HostPathDeps): DeniedPath[] {
  const own = norm(deps.home);
  // clawpod's state first: its message is the more specific one when it is ~/.clawpod.
  const entries: Array<[string, string]> = [[`clawpod's state directory ${deps.clawpodHome}`, norm(deps.clawpodHome)]];
  for (const home of deniedHomes(deps)) {
    for (const n of CREDENTIAL_NAMES) entries.push([home === own ? `~/${n}` : under(home, n), under(home, n)]);
  }
  for (const d of DENIED_SYSTEM_PATHS) entries.push([d, d]);
  const resolve = resolver(deps);
  return entries.map(([display, lexical]) => {
    const resolved = resolve(lexical);
    return { display, forms: lexical === resolved ? [lexical] : [lexical, resolved] };
  });
}

const NEVER = 'which a pod may never see';

/**
 * Why a pod may not see realPath (an absolute, symlink-free host path), or null if it may.
 * Refused when it is a denied path, is inside one, or contains one: mounting ~ or /home would
 * expose ~/.ssh just as surely as mounting ~/.ssh. Used for mounts and for the workspace.
 */
export function checkHostPath(realPath: string, deps: HostPathDeps): string | null {
  const p = norm(realPath);
  const outside = '(use a directory outside it)';
  const denied = deniedPaths(deps);
  // Being at or inside a denied path is the more specific answer; the state directory first.
  for (const d of denied) {
    for (const form of d.forms) {
      if (p === form) return `${p} is ${d.display}, ${NEVER} ${outside}`;
      if (isInside(p, form)) return `${p} is inside ${d.display}, ${NEVER} ${outside}`;
    }
  }
  for (const d of [...denied.slice(1), denied[0]]) {
    const form = d.forms.find((f) => isInside(f, p));
    if (form) return `${p} contains ${d.display}, ${NEVER} (pick a narrower directory)`;
  }
  const parts = p.split('/');
  const at = parts.findIndex((c) => CREDENTIAL_DIR_NAMES.has(c));
  if (at > 0) return `${p} is inside ${parts.slice(0, at + 1).join('/')}, a credential directory ${NEVER} ${outside}`;
  return null;
}
