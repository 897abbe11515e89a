// The egress proxy's public API: the pod wiring starts one proxy per pod with its rules,
// resolved secrets, run CA and an event sink.
export { createRunCA } from './ca.js';
export { decide, guardAddresses, type Decision } from './decide.js';
export { DENY_HEADER } from './respond.js';
export { makePlaceholder, redactor } from './secrets.js';
export { startPodProxy } from './server.js';
export {
  DEFAULT_TIMEOUTS,
  type NetworkRules,
  type PodProxy,
  type PodProxyOptions,
  type ProxyEvent,
  type ProxyTimeouts,
  type ResolvedSecret,
  type RunCA,
} from './types.js';
