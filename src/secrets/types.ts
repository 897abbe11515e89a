// A secret once its source has been read. Lives at the bottom layer (beside policy) so the
// proxy, the pod output redactor, the agent's tool output, the audit log and the change set all
// share one engine without depending on each other.

/** Where the proxy may put a secret's value (policy secrets[].inject). */
export interface InjectRule {
  /** The proxy sets this request header itself on every request to the secret's hosts. */
  header?: string;
  /** The header's value; {} is the value, {base64} its base64. Default "{}". */
  format?: string;
  /** The placeholder is also swapped in this query parameter's value (percent-encoded). */
  query?: string;
}

export interface ResolvedSecret {
  name: string;
  /** The real credential; never written to an event, error or body. */
  value: string;
  /** What the pod holds instead (see makePlaceholder). */
  placeholder: string;
  /** Host patterns (policy syntax) whose requests get the value injected. */
  hosts: string[];
  /** Absent: the placeholder is swapped in credential header values (CREDENTIAL_HEADERS), and nowhere else. */
  inject?: InjectRule;
}

/** The shortest value clawpod accepts: shorter ones match ordinary output and cannot be scrubbed without mangling it. */
export const MIN_SECRET_BYTES = 8;
