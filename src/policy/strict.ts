// The built-in strict policy, without loading zod on the hot path. The bundle build computes
// the schema's defaults with the real schema (scripts/bundle.mjs) and inlines them here; when
// running unbundled, callers fall back to validating {} through the schema.
import type { RawPolicy } from './schema.js';

export const BUILTIN_STRICT = 'builtin:strict';

declare const __CLAWPOD_STRICT_POLICY__: RawPolicy | undefined;

/** True when source names the built-in strict policy (also the default when none is given). */
export function isBuiltinStrict(source: string | undefined): boolean {
  return source === undefined || source === 'strict' || source === BUILTIN_STRICT;
}

/** The strict policy's parsed form as the schema produced it at build time, if inlined. */
export function precomputedStrict(): RawPolicy | undefined {
  return typeof __CLAWPOD_STRICT_POLICY__ === 'undefined' ? undefined : structuredClone(__CLAWPOD_STRICT_POLICY__);
}
