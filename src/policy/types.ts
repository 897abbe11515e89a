// Normalized policy rules: what backends and the proxy consume. Never raw YAML.
import type { SettingsRule } from './settings.js';

export type WorkspaceMode = 'overlay' | 'ro' | 'rw' | 'none';

export interface MountRule {
  /** Absolute, symlink-free host path (realpath), checked against the deny list. */
  host: string;
  /** Absolute path inside the pod. */
  path: string;
  mode: 'ro' | 'rw';
}

export interface SecretRule {
  name: string;
  from: { kind: 'env' | 'file'; ref: string };
  hosts: string[];
  /** Where the proxy puts the value; absent: credential header values (Authorization, X-Api-Key, ...), nowhere else. */
  inject?: { header?: string; format?: string; query?: string };
}

export interface Rules {
  resources: {
    cpus: number;
    memoryBytes: number;
    pids: number;
    timeoutMs: number;
    diskBytes: number;
  };
  workspace: WorkspaceMode;
  /** Where the pod sees the workspace: at /workspace (absent, the default) or at its own host path. */
  workspaceAt?: '/workspace' | 'host';
  /** filesystem.ignore: gitignore patterns whose changes are kept apart from review (absent: none). */
  ignore?: string[];
  mounts: MountRule[];
  network: { allow: string[]; deny: string[]; hosts: Record<string, string>; extraCA?: string[] };
  secrets: SecretRule[];
  env: Record<string, string>;
  tools: { allow?: string[]; deny?: string[]; approve?: string[] };
  /** Non-secret tool settings for the pod (see policy/settings.ts); absent: none carried. */
  settings?: { git?: SettingsRule; npm?: SettingsRule };
  /** Where the rules came from: a file path or "builtin:strict". */
  source: string;
}
