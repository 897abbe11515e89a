// The agent's tool names, as the policy's tools.allow/deny/approve may name them. The policy is
// the bottom layer and cannot ask the agent; src/agent/tools/names.test.ts checks this list
// against the tools createTools() really makes, so the two cannot drift apart.
export const AGENT_TOOL_NAMES: readonly string[] = ['bash', 'read_file', 'write_file', 'edit_file', 'glob', 'grep', 'web_fetch'];
