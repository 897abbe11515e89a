// The egress proxy's public shapes. The proxy knows policy rules and an event sink, nothing of
// pods or agents: the caller resolves secrets, creates the run CA and wires the socket in.
import type { Rules } from '../policy/types.js';
import type { ResolvedSecret } from '../secrets/types.js';

export type NetworkRules = Rules['network'];

/** A secret whose source has been read: the value lives only in the host process. */
export type { InjectRule, ResolvedSecret } from '../secrets/types.js';

export interface ProxyEvent {
  type: 'net.allow' | 'net.deny' | 'secret.use' | 'policy.deny';
  data: Record<string, unknown>;
}

/** An ephemeral per-run certificate authority for terminating TLS to hosts that get secrets. */
export interface RunCA {
  certPem: string;
  keyPem: string;
  /** A leaf certificate for host (a DNS name or IP literal), signed by this CA; cached per host. */
  issue(host: string): { certPem: string; keyPem: string };
}

export interface ProxyTimeouts {
  /** A client must finish sending request headers within this long (slow-loris guard). */
  headersMs: number;
  /** A connection or tunnel with no traffic either way for this long is closed. */
  idleMs: number;
  /** An upstream that has not accepted the connection within this long gets a 502. */
  connectMs: number;
}

export const DEFAULT_TIMEOUTS: ProxyTimeouts = Object.freeze({ headersMs: 10_000, idleMs: 300_000, connectMs: 30_000 });

/**
 * Concurrent connections one pod may hold to its proxy. Each can hold an upstream socket too,
 * so this bounds the descriptors a pod costs clawpod; past it a connection is answered 503.
 */
export const DEFAULT_MAX_CONNECTIONS = 256;

export interface PodProxyOptions {
  /** Listen on this unix socket (the pod reaches it through a bind mount). Must not exist yet. */
  socketPath: string;
  /** Pod/run id, put in every event for attribution. */
  pod: string;
  network: NetworkRules;
  secrets: ResolvedSecret[];
  /** Needed when any secret exists: TLS to a secret's hosts is terminated with its leaf certs. */
  ca?: RunCA;
  /** Extra PEM roots trusted for upstream TLS (network.extraCA); Node's bundled roots always are. */
  upstreamCA?: string[];
  /** Name resolution; default: dns.promises.lookup with all addresses. */
  resolve?: (host: string) => Promise<string[]>;
  /** This host's own addresses; default: every address of os.networkInterfaces(). */
  localAddresses?: () => string[];
  /** Owner for the socket file (chowned after listen, mode 0600), e.g. the pod's uid. */
  socketOwner?: { uid: number; gid: number };
  /** Default DEFAULT_MAX_CONNECTIONS. */
  maxConnections?: number;
  /** Defaults in DEFAULT_TIMEOUTS; tests shorten them. */
  timeouts?: Partial<ProxyTimeouts>;
  onEvent: (e: ProxyEvent) => void;
}

export interface PodProxy {
  close(): Promise<void>;
  socketPath: string;
}
