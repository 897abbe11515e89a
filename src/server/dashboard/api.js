// The API as the page uses it: every call carries the bearer token in its header (the token
// never goes in a URL the server logs), errors come back as one line, and the event stream is
// read with fetch, since EventSource cannot send a header.

const KEY = 'clawpod.token';

/** Takes #token=... from the address bar into sessionStorage and removes it from the address. */
export function takeTokenFromUrl() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!m) return;
  sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
  history.replaceState(null, '', `${location.pathname}${location.search}#/runs`);
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Called when the server says 401: the page asks for a token again. */
let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

function headers(extra = {}) {
  const t = token();
  return { ...(t ? { authorization: `Bearer ${t}` } : {}), ...extra };
}

async function failure(res) {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body?.error?.message) message = String(body.error.message);
  } catch {
    /* not JSON: the status line says it */
  }
  if (res.status === 401) onUnauthorized();
  return new ApiError(res.status, message);
}

async function call(method, path, body, opts = {}) {
  const init = { method, headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }), signal: opts.signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    throw new ApiError(0, `the server did not answer (${e?.message ?? e}); is clawpod serve running?`);
  }
  if (!res.ok) throw await failure(res);
  return res;
}

export const api = {
  getJson: async (path, opts) => (await call('GET', path, undefined, opts)).json(),
  getText: async (path, opts) => (await call('GET', path, undefined, opts)).text(),
  post: async (path, body = {}) => (await call('POST', path, body)).json(),
  del: async (path) => {
    const res = await call('DELETE', path);
    const text = await res.text();
    return text ? JSON.parse(text) : {};
  },
};

/**
 * Reads GET path as text/event-stream and calls onEvent(type, data) per event, data parsed as
 * JSON (or the raw string when it is not JSON). Resolves when the server ends the stream.
 */
export async function readEvents(path, onEvent, signal) {
  const res = await call('GET', path, undefined, { signal });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let type = '';
  let data = [];
  const dispatch = () => {
    if (data.length) {
      const raw = data.join('\n');
      let parsed = raw;
      try {
        parsed = JSON.parse(raw);
      } catch {
        /* shown as text */
      }
      onEvent(type || 'message', parsed);
    }
    type = '';
    data = [];
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      let line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') dispatch();
      else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let v = colon < 0 ? '' : line.slice(colon + 1);
        if (v.startsWith(' ')) v = v.slice(1);
        if (field === 'event') type = v;
        else if (field === 'data') data.push(v);
      }
      nl = buf.indexOf('\n');
    }
  }
  dispatch();
}

/** Path pieces from data (a run id, a schedule id) go into a URL encoded. */
export const enc = encodeURIComponent;
