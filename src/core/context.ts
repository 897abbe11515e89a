// Where one clawpod process is wired together: paths, store, backends. The only place that
// holds mutable process state; everything below receives what it needs. Backends come from a
// registry given to the context (the bwrap backend by default; a fake one in core's unit tests).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBwrapBackend } from '../pod/bwrap.js';
import { PodError, type Backend } from '../pod/types.js';
import { openStore, type RunStore } from '../store/runs.js';

/** Makes a backend for one context; called at most once per context, when first needed. */
export type BackendFactory = (o: { clawpodHome: string; env: NodeJS.ProcessEnv }) => Backend;

/** The backends a context can use, by name; a string is "not available yet" with its fix. */
export type BackendRegistry = Record<string, BackendFactory | string>;

export const DEFAULT_BACKENDS: BackendRegistry = {
  bwrap: ({ clawpodHome, env }) => createBwrapBackend({ clawpodHome, workspaceCopy: env.CLAWPOD_WORKSPACE_COPY === '1' }),
  gvisor: 'the gvisor backend is not available yet (use --backend bwrap)',
  docker: 'the docker backend is not available yet (use --backend bwrap)',
  kubernetes: 'the kubernetes backend is not available yet (use --backend bwrap)',
};

export interface Context {
  home: string;
  clawpodHome: string;
  env: NodeJS.ProcessEnv;
  store(): RunStore;
  /** A backend by name (default: the registry's first). */
  backend(name?: string): Backend;
  /** Every available backend of the registry (for reaping leftovers of each). */
  backends(): Backend[];
  runDir(id: string): string;
  close(): void;
}

export interface ContextOptions {
  backends?: BackendRegistry;
}

export function createContext(env: NodeJS.ProcessEnv = process.env, opts: ContextOptions = {}): Context {
  const home = env.HOME || os.homedir();
  const clawpodHome = path.resolve(env.CLAWPOD_HOME || path.join(home, '.clawpod'));
  const registry = opts.backends ?? DEFAULT_BACKENDS;
  const available = Object.keys(registry).filter((n) => typeof registry[n] === 'function');
  let store: RunStore | null = null;
  const made = new Map<string, Backend>();
  const ensureHome = () => {
    fs.mkdirSync(path.join(clawpodHome, 'runs'), { recursive: true, mode: 0o700 });
    fs.chmodSync(clawpodHome, 0o700);
  };
  const backend = (name = available[0] ?? 'bwrap'): Backend => {
    const entry = Object.hasOwn(registry, name) ? registry[name] : undefined;
    if (typeof entry === 'string') throw new PodError(entry);
    if (!entry) throw new PodError(`unknown backend "${name}" (available: ${available.join(', ')})`);
    let b = made.get(name);
    if (!b) {
      b = entry({ clawpodHome, env });
      made.set(name, b);
    }
    return b;
  };
  return {
    home,
    clawpodHome,
    env,
    store() {
      if (!store) {
        ensureHome();
        store = openStore(path.join(clawpodHome, 'clawpod.db'));
      }
      return store;
    },
    backend,
    backends: () =>
      available.flatMap((n) => {
        try {
          return [backend(n)];
        } catch {
          return [];
        }
      }),
    runDir: (id) => path.join(clawpodHome, 'runs', id),
    close() {
      store?.close();
      store = null;
    },
  };
}
