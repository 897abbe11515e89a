// What the egress proxy refused in one run, counted per host as the events go by, so that a
// failing install explains itself in one line at the end ("clawpod: refused: nodejs.org (3)").
// Host names are the pod's choice: every one is quoted and escaped before it is shown.
import { safeText } from './terminal.js';

const SHOWN = 5;
const MAX_HOST_CHARS = 80;
// Past this many distinct hosts the rest are counted together: a pod can invent names without end.
const MAX_KINDS = 1000;
// Keys no host name can be: the proxy records an unreadable target with an empty host.
const OTHERS = '\0other';
const label = (k: string) => (k === OTHERS ? '(other hosts)' : k === '' ? '(no host)' : k);

export interface RefusalTally {
  /** Feed every event of the run; only net.deny counts. */
  add(e: { type: string; data: Record<string, unknown> }): void;
  /** host -> requests refused, most first. */
  byHost(): Record<string, number>;
  /** The stderr line, or null when nothing was refused. */
  line(): string | null;
}

export function refusalTally(): RefusalTally {
  const counts = new Map<string, number>();
  const sorted = () => [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return {
    add(e) {
      if (e.type !== 'net.deny') return;
      // A coalesced event stands for `count` refusals; the first of a kind carries none.
      const n = Number(e.data.count);
      const count = Number.isSafeInteger(n) && n > 0 ? n : 1;
      let host = typeof e.data.host === 'string' ? e.data.host.replace(/\0/g, '\\0') : '';
      if (!counts.has(host) && counts.size >= MAX_KINDS) host = OTHERS;
      counts.set(host, (counts.get(host) ?? 0) + count);
    },
    // Keys escaped too: the --json line goes to the same stderr.
    byHost: () => Object.fromEntries(sorted().map(([h, n]) => [safeText(cut(label(h))), n])),
    line() {
      if (counts.size === 0) return null;
      const all = sorted();
      const shown = all.slice(0, SHOWN).map(([h, n]) => `${h === OTHERS || h === '' ? label(h) : showHost(h)} (${n})`);
      const rest = all.length - SHOWN;
      const more = rest > 0 ? `, and ${rest} more host${rest === 1 ? '' : 's'}` : '';
      return `clawpod: refused: ${shown.join(', ')}${more}; allow hosts with network.allow`;
    },
  };
}

/** A plain host name as it is; anything else JSON-quoted (no ", (" or ")" can fake a count) and
 *  escaped (no control, bidi or invisible character reaches the terminal), cut to a length. */
export function showHost(h: string): string {
  const short = cut(h);
  if (/^[A-Za-z0-9._:[\]-]+$/.test(h)) return short;
  return safeText(JSON.stringify(short));
}

function cut(h: string): string {
  return h.length > MAX_HOST_CHARS ? `${h.slice(0, MAX_HOST_CHARS)}…` : h;
}
