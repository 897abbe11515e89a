import { ClawpodError } from '../util/errors.js';

// Kept apart from load.ts so code that only reports policy errors does not pull in zod and yaml.

/** A problem with a policy that the user caused and can fix; message is always one line. */
export class PolicyError extends ClawpodError {}
