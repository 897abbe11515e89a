// Errors a user causes and can fix: one line, exit 125, never a stack trace.
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 125) { super(message); this.name = 'UserError'; }
}
