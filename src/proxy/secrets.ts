// Scoped secrets for the proxy: the engine in src/secrets is the one implementation (placeholder,
// scope, placement, scrubbing); this module only re-exports what the proxy's modules use.
export { formatValue, injectRequest, makePlaceholder, redactor, scopedSecrets, type Injected, type Refusal } from '../secrets/index.js';
