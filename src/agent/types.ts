// The agent's shared shapes: one neutral message format (Anthropic-shaped; the OpenAI provider
// converts), one tool contract, one event union that flows to the CLI and the audit log.

export type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> }
  | { type: 'tool_result'; tool_use_id: string; content: string; is_error?: boolean };

export interface Message {
  role: 'user' | 'assistant';
  content: Block[];
}

/** JSON-schema description of a tool, as the model sees it. */
export interface ToolSpec {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export interface ModelRequest {
  model: string;
  system: string;
  messages: Message[];
  tools: ToolSpec[];
  maxTokens: number;
  signal?: AbortSignal;
}

/** One model turn. Failures are data (`error`), never thrown, so the loop can record them. */
export type ModelTurn = { ok: true; content: Block[]; stopReason: string; usage: Usage } | { ok: false; error: string; retryable: boolean };

export interface Provider {
  name: string;
  /** Streams one turn; onText receives text deltas as they arrive. */
  turn(req: ModelRequest, onText: (delta: string) => void): Promise<ModelTurn>;
}

/** What a tool may do to the pod: run one command there (see src/pod/live.ts). */
export interface PodOps {
  exec(
    argv: string[],
    opts?: { timeoutMs?: number; maxOutput?: number },
  ): Promise<{
    exitCode: number;
    stdout: Buffer;
    stderr: Buffer;
    truncated: boolean;
    timedOut: boolean;
  }>;
}

export interface ToolResult {
  content: string;
  isError: boolean;
}

export interface Tool {
  spec: ToolSpec;
  /** Runs in the pod through ops; a failure is a result with isError, never a throw. */
  run(input: Record<string, unknown>, ops: PodOps): Promise<ToolResult>;
}
