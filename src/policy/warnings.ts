// What `policy check` warns about beyond the schema: rules that validate but do not do what they
// say (a secret for a host the proxy never lets through, a name override for a host not allowed).
// Pure: reads Rules only. What needs the host (a secret's variable or file) is checked by the
// command, with exec's own functions.
import { secretHostReachable } from './explain.js';
import { matchHost, parseHostPattern } from './hostpattern.js';
import type { Rules } from './types.js';

/** One line per rule that validates but will not take effect; [] when there is none. */
export function policyWarnings(rules: Rules): string[] {
  const out: string[] = [];
  rules.secrets.forEach((s, i) => {
    for (const h of s.hosts.filter((host) => !secretHostReachable(host, rules))) {
      const why =
        rules.network.allow.length === 0 ? 'network.allow is empty, so the pod has no network' : 'network.allow does not cover it (or network.deny refuses it)';
      out.push(`secrets[${i}] (${s.name}): host ${h} is never reached: ${why}; add it, e.g. network: { allow: [${h}] }`);
    }
  });
  for (const name of Object.keys(rules.network.hosts)) {
    const reachable =
      [443, 80].some((port) => rules.network.allow.some((a) => matchHost(a, name, port))) ||
      rules.network.allow.some((a) => {
        const p = parseHostPattern(a);
        return p.kind !== 'wildcard' && p.host === name;
      });
    if (!reachable)
      out.push(`network.hosts["${name}"]: ${name} is not allowed by network.allow, so this override is never used; add it, e.g. network: { allow: [${name}] }`);
  }
  return out;
}
