// The one base of every error a user can cause and fix. It carries the exit code the command
// ends with, and its message is one line naming the problem and the fix, so the command line
// prints it as is. Anything else that reaches the top is clawpod's own fault ("internal error").

export class ClawpodError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 125) {
    // Multi-line text (a YAML excerpt, a nested error) would break the one-line contract.
    super(message.replace(/\s*\n\s*/g, ' ').trim());
    this.exitCode = exitCode;
    this.name = new.target.name;
  }
}

/** Whether e is an error the user can fix (printed as is) rather than clawpod's own fault. */
export function isUserCaused(e: unknown): e is ClawpodError {
  return e instanceof ClawpodError;
}
