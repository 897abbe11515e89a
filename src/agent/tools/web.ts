// web_fetch: curl in the pod, so the request leaves only through the run's egress proxy (the
// pod's proxy variables) and the policy's allowlist applies; the host process never fetches.
import type { Tool } from '../types.js';
import { boundText, defineTool, fail, formatBytes, looksBinary, ok, str, ToolInputError } from './common.js';

export const FETCH_MAX_BYTES = 256 * 1024;
export const FETCH_TIMEOUT_MS = 30_000;
/** The script's own exit code for "no proxy in the pod": curl never uses it. */
const NO_NETWORK = 90;

// Without proxy variables the pod has no way out at all: say so instead of a DNS error.
// Headers (of every hop: CONNECT, redirects) go to stderr, the body to stdout.
const FETCH_SCRIPT =
  `if [ -z "\${HTTPS_PROXY}\${HTTP_PROXY}\${https_proxy}\${http_proxy}\${ALL_PROXY}" ]; then exit ${NO_NETWORK}; fi; ` +
  'exec curl -sS -L --max-redirs 5 --proto =http,https --max-time "$2" -D /dev/stderr -o - "$1"';

const TEXT_TYPE = /^text\/|json|xml|javascript|ecmascript|yaml|toml|csv|x-www-form-urlencoded/i;

export function webFetchTool(): Tool {
  return defineTool(
    {
      name: 'web_fetch',
      description: `Fetch a URL (http or https) from inside the sandbox through its egress proxy: only hosts the policy allows are reachable. Returns the status line and the text body (at most ${FETCH_MAX_BYTES / 1024} KiB).`,
      input_schema: { type: 'object', properties: { url: { type: 'string', description: 'The http(s) URL to fetch' } }, required: ['url'] },
    },
    async (input, ops) => {
      const url = checkUrl(str(input, 'url'));
      const r = await ops.exec(['sh', '-c', FETCH_SCRIPT, 'sh', url, String(FETCH_TIMEOUT_MS / 1000)], {
        timeoutMs: FETCH_TIMEOUT_MS + 5000,
        maxOutput: FETCH_MAX_BYTES,
      });
      if (r.exitCode === NO_NETWORK) return fail('web_fetch: the policy allows no hosts, so the sandbox has no network');
      if (r.timedOut || r.exitCode === 28) return fail(`fetching ${url} timed out after ${FETCH_TIMEOUT_MS / 1000} s`);
      const head = parseHeaders(r.stderr.toString('utf8'));
      if (head.deny !== null) return fail(`blocked by the sandbox's network policy: ${head.deny}${head.status ? ` (${head.status})` : ''}`);
      if (r.exitCode !== 0) return fail(`fetching ${url} failed: ${head.curlError ?? head.status ?? `curl exit ${r.exitCode}`}`);
      const status = head.status ?? 'HTTP (no status line)';
      const type = head.contentType ?? '';
      const bodyCut = r.truncated && r.stdout.length >= FETCH_MAX_BYTES;
      const body =
        (type && !TEXT_TYPE.test(type)) || looksBinary(r.stdout)
          ? `[binary body (${type || 'unknown type'}, ${bodyCut ? 'over ' : ''}${formatBytes(r.stdout.length)}) not shown]`
          : boundText(r.stdout, FETCH_MAX_BYTES, bodyCut);
      const text = `${status}${type ? `\ncontent-type: ${type}` : ''}\n\n${body}`;
      return head.code >= 400 ? fail(text) : ok(text);
    },
  );
}

function checkUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ToolInputError(`field "url" is not a valid URL: ${raw.slice(0, 200)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ToolInputError(`field "url" must be http or https, got ${u.protocol}`);
  return u.href;
}

export interface FetchHead {
  status: string | null;
  code: number;
  contentType: string | null;
  deny: string | null;
  curlError: string | null;
}

/** The final response's status and type, any proxy denial (of any hop), and curl's own error. */
export function parseHeaders(dump: string): FetchHead {
  const lines = dump.split(/\r?\n/);
  let status: string | null = null;
  let contentType: string | null = null;
  let deny: string | null = null;
  let curlError: string | null = null;
  for (const line of lines) {
    if (/^HTTP\/[\d.]+ \d{3}/.test(line)) {
      status = line.trim();
      contentType = null;
      continue;
    }
    const m = line.match(/^([\w-]+):\s*(.*)$/);
    if (m && m[1].toLowerCase() === 'content-type') contentType = m[2].trim();
    else if (m && m[1].toLowerCase() === 'x-clawpod-deny') deny = m[2].trim();
    else if (line.startsWith('curl: ')) curlError = line.slice(6).trim();
  }
  const code = status ? Number(status.split(' ')[1]) : 0;
  return { status, code, contentType, deny, curlError };
}
