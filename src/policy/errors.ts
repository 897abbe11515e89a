// Kept apart from load.ts so code that only reports policy errors does not pull in zod and yaml.

/** A problem with a policy that the user caused and can fix; message is always one line. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  constructor(message: string) {
    // Multi-line text (a YAML excerpt, a nested error) would break the one-line contract.
    super(message.replace(/\s*\n\s*/g, ' ').trim());
  }
}
