// Errors a user causes and can fix: one line, exit 125 (or the code given), never a stack trace.
import { ClawpodError } from '../util/errors.js';

export { ClawpodError } from '../util/errors.js';

export class UserError extends ClawpodError {}
