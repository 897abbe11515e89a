// Where the pod sees the workspace. By default at /workspace; with `filesystem.workspaceAt: host`
// (or `--at-host-path`) at its own host path, so the absolute paths a pod records (a git
// worktree's gitdir, symlinks, a venv's scripts, config.status) still lead there after apply.
// A host path can be anywhere, so it must not land on what the pod needs for itself or on the
// system it is given: those are refused here (pure: no I/O), once by clawpod with the user's
// one-line error and again when the command line is built (fail closed).
import { posix } from 'node:path';
import { UNSAFE } from '../util/unsafe-text.js';
import type { Rules } from '../policy/types.js';

export const DEFAULT_POD_WORKSPACE = '/workspace';
const POD_HOME = '/home/pod';

/** Trees of the pod's own system and plumbing: the workspace may be neither these nor inside them. */
const SYSTEM_TREES = ['/proc', '/sys', '/dev', '/etc', '/usr', '/bin', '/sbin', '/run', '/memory', '/skills'];
/** The pod's private writable places: below them is fine (a mount point on the pod's own copy). */
const OWN_PLACES = ['/tmp', POD_HOME];
/** Longest host path accepted: the pod still needs room for deep trees below it (PATH_MAX 4096). */
const MAX_BYTES = 1024;

const inside = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);

/** The directory the pod sees the workspace at (and works in). */
export function podWorkspaceDir(rules: Pick<Rules, 'workspace' | 'workspaceAt'>, workspace: string | null): string {
  return rules.workspaceAt === 'host' && workspace && rules.workspace !== 'none' ? workspace : DEFAULT_POD_WORKSPACE;
}

/** Why the workspace cannot be mounted at host path `p` (a realpath), or null when it can. */
export function hostPathError(p: string, mountPaths: readonly string[] = []): string | null {
  if (/[\\\ufffd]/.test(p) || UNSAFE.test(p)) {
    return 'its path holds a control, invisible or non-UTF-8 character or a backslash, ' + 'which mount tables cannot carry; rename it';
  }
  const normalized = p.startsWith('/') && posix.normalize(p) === p && (p.length === 1 || !p.endsWith('/'));
  if (!normalized) return 'it is not an absolute, normalized path';
  if (Buffer.byteLength(p) > MAX_BYTES) return `its path is longer than ${MAX_BYTES} bytes`;
  if (p === '/') return 'it would cover the whole system';
  const top = `/${p.split('/')[1]}`;
  const tree = SYSTEM_TREES.find((d) => inside(p, d)) ?? (top.startsWith('/lib') ? top : undefined);
  if (tree) return `it is at or under ${tree}, which the pod needs for its own system`;
  const own = OWN_PLACES.find((d) => p === d);
  if (own) return `${own} is the pod's own (private) ${own === '/tmp' ? '/tmp' : 'home'}; use a directory below it`;
  const covered = [...OWN_PLACES, ...mountPaths].find((d) => d.startsWith(`${p}/`));
  if (covered) return `it would cover the pod's ${covered}`;
  const mount = mountPaths.find((m) => inside(p, m));
  if (mount) return `it is at or under ${mount}, where the policy mounts another host directory`;
  return null;
}

/** The one-line refusal for a workspace that cannot be mounted at its host path, or null. */
export function workspaceAtRefusal(rules: Pick<Rules, 'workspace' | 'workspaceAt' | 'mounts'>, workspace: string | null): string | null {
  if (rules.workspaceAt !== 'host' || !workspace || rules.workspace === 'none') return null;
  const why = hostPathError(
    workspace,
    rules.mounts.map((m) => m.path),
  );
  if (!why) return null;
  return (
    `workspace ${JSON.stringify(workspace)} cannot be mounted at its host path ` +
    '(filesystem.workspaceAt: host / --at-host-path): ' +
    `${why} (move the project elsewhere, or use the default filesystem.workspaceAt: /workspace)`
  );
}
