// The agent's tools: every one runs in the task's pod through PodOps, none touches the host.
import type { Tool } from '../types.js';
import { bashTool } from './bash.js';
import { WORKSPACE } from './common.js';
import { editFileTool, readFileTool, writeFileTool } from './files.js';
import { globTool, grepTool } from './search.js';
import { webFetchTool } from './web.js';

export { ToolInputError } from './common.js';

/** A fresh set of all tools (no shared state: each run may make its own). `workspace`: where the
 *  pod sees it (/workspace by default, or its host path with filesystem.workspaceAt: host). */
export function createTools(opts: { workspace?: string } = {}): Tool[] {
  const dir = opts.workspace ?? WORKSPACE;
  return [bashTool(dir), readFileTool(dir), writeFileTool(dir), editFileTool(dir), globTool(dir), grepTool(dir), webFetchTool()];
}

export function toolByName(tools: Tool[], name: string): Tool | undefined {
  return tools.find((t) => t.spec.name === name);
}

/**
 * The policy's `tools.allow` / `tools.deny` applied: deny wins; an allow list, when present,
 * admits only the tools it names (fail closed: an allow list of unknown names admits none).
 * Names we do not know are ignored rather than refused, so a policy written for a newer
 * clawpod still loads.
 */
export function filterTools(tools: Tool[], rules: { allow?: string[]; deny?: string[] }): Tool[] {
  const deny = new Set(rules.deny ?? []);
  const allow = rules.allow ? new Set(rules.allow) : null;
  return tools.filter((t) => !deny.has(t.spec.name) && (allow === null || allow.has(t.spec.name)));
}
