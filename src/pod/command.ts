// Deciding how to start the pod's command. A command that plainly exists and is executable in
// the pod's view is exec'd directly; anything else goes through `sh -c 'exec "$0" "$@"'` inside
// the pod, whose exit status (126 not executable, 127 not found) and message are the contract's.
// The shortcut saves a shell start per pod; it only ever looks at read-only or pod-start state.
import fs from 'node:fs';
import path from 'node:path';
import { POD_PATH, type HostLayout } from './bwrap-argv.js';
import type { WorkspaceMode } from '../policy/types.js';

const SH_EXEC = ['/bin/sh', '-c', 'exec "$0" "$@"'];

/** Maps a path inside the pod to the host file that backs it, for the parts mirrored from the host. */
function hostPathOf(podPath: string, layout: HostLayout, workspace: string | null, mode: WorkspaceMode, podDir: string): string | null {
  const p = path.posix.normalize(podPath);
  if (p === '/usr' || p.startsWith('/usr/')) return p;
  for (const [link, target] of Object.entries(layout.usrLinks)) {
    if (p.startsWith(`${link}/`)) return path.posix.join('/', target, p.slice(link.length + 1));
  }
  if (workspace && mode !== 'none' && p.startsWith(`${podDir}/`)) return path.join(workspace, p.slice(podDir.length + 1));
  return null;
}

function isExecutableFile(hostPath: string | null): boolean {
  if (!hostPath) return false;
  try {
    const st = fs.statSync(hostPath);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** `podDir`: where the pod sees the workspace (and works), /workspace or its host path. */
export function podCommand(command: string[], layout: HostLayout, workspace: string | null, mode: WorkspaceMode, podDir = '/workspace'): string[] {
  const [cmd, ...args] = command;
  let podPath: string | null = null;
  if (cmd.startsWith('/')) podPath = cmd;
  else if (cmd.includes('/')) podPath = path.posix.join(podDir, cmd);
  else {
    for (const dir of POD_PATH.split(':')) {
      const candidate = path.posix.join(dir, cmd);
      if (isExecutableFile(hostPathOf(candidate, layout, workspace, mode, podDir))) {
        podPath = candidate;
        break;
      }
    }
  }
  if (podPath && isExecutableFile(hostPathOf(podPath, layout, workspace, mode, podDir))) return [podPath, ...args];
  return [...SH_EXEC, ...command];
}
