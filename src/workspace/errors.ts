// Errors a user can meet when reviewing or applying a run. Each message is one line that names
// the path and the fix, so the CLI can print it as is (DESIGN: no stack traces for user errors).
import { ClawpodError } from '../util/errors.js';
import { quotePath } from './quote.js';

/** The workspace moved on since the run started; applying would overwrite someone's work. */
export class WorkspaceChangedError extends ClawpodError {
  constructor(
    readonly path: string,
    readonly reason: string,
    runId: string,
  ) {
    super(`workspace changed since run started: ${quotePath(path)} ${reason} ` + `(review with clawpod runs diff ${runId}, then re-run; or discard)`);
  }
}

/** Applying would write or delete through something that is not a real directory. */
export class UnsafePathError extends ClawpodError {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/** The change set itself is malformed (bad relpath, contradictory lists, unsupported entry). */
export class ChangeSetError extends ClawpodError {
  constructor(message: string) {
    super(message);
  }
}
