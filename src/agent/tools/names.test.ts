// The policy validates tools.allow/deny/approve against AGENT_TOOL_NAMES (it may not import the
// agent): that list must be exactly the tools the agent has.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AGENT_TOOL_NAMES } from '../../policy/tool-names.js';
import { createTools } from './index.js';

test("the policy's list of tool names is the agent's tools, in order", () => {
  assert.deepEqual(
    createTools().map((t) => t.spec.name),
    [...AGENT_TOOL_NAMES],
  );
});
