// The policy module's public API. Pure: schema, loading, normalization, host patterns.
export type { MountRule, Rules, SecretRule, WorkspaceMode } from './types.js';
export { formatBytes, formatDuration, parseDuration, parseSize } from './units.js';
export {
  canonicalHost,
  DEFAULT_PORTS,
  formatHostPattern,
  hostPatternError,
  isHostPattern,
  matchHost,
  parseHostPattern,
  type HostPattern,
} from './hostpattern.js';
export { envNameError, policySchema, type PolicyInput, type RawPolicy } from './schema.js';
export { BUILTIN_STRICT, isBuiltinStrict, loadPolicy, PolicyError, policySourceName, type LoadDeps } from './load.js';
export {
  checkHostPath,
  DENIED_HOME_PATHS,
  DENIED_SYSTEM_PATHS,
  expandHome,
  normalizePolicy,
  podPathError,
  RESERVED_POD_PATHS,
  type NormalizeDeps,
} from './normalize.js';
export { explainPolicy } from './explain.js';
export { precomputedStrict } from './strict.js';
