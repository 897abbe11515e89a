// The secret engine: one list of spellings, one scrubber, one injection rule, used by the proxy,
// pod output, tool output, the audit log, the store and the change set alike.
export { formatValue, injectRequest, makePlaceholder, scopedSecrets, type Injected, type Refusal } from './inject.js';
export { base64Core, MIN_NEEDLE, needles } from './needles.js';
export { scrubber, type Replacement, type Scrubber } from './scan.js';
export { MIN_SECRET_BYTES, type InjectRule, type ResolvedSecret } from './types.js';
import { scrubber } from './scan.js';
import type { ResolvedSecret } from './types.js';

/** Text with every recognised spelling of a real value replaced by [secret:NAME]. */
export function redactor(secrets: ResolvedSecret[]): (s: string) => string {
  return scrubber(secrets, 'tag').text;
}
