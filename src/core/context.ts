// Where one clawpod process is wired together: paths, store, backend. The only place that
// holds mutable process state; everything below receives what it needs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBwrapBackend } from '../pod/bwrap.js';
import { PodError, type Backend } from '../pod/types.js';
import { openStore, type RunStore } from '../store/runs.js';

export const BACKENDS = ['bwrap'] as const;
const LATER_BACKENDS: Record<string, string> = {
  gvisor: 'the gvisor backend is not available yet (use --backend bwrap)',
  docker: 'the docker backend is not available yet (use --backend bwrap)',
  kubernetes: 'the kubernetes backend is not available yet (use --backend bwrap)',
};

export interface Context {
  home: string;
  clawpodHome: string;
  env: NodeJS.ProcessEnv;
  store(): RunStore;
  backend(name?: string): Backend;
  runDir(id: string): string;
  close(): void;
}

export function createContext(env: NodeJS.ProcessEnv = process.env): Context {
  const home = env.HOME || os.homedir();
  const clawpodHome = path.resolve(env.CLAWPOD_HOME || path.join(home, '.clawpod'));
  let store: RunStore | null = null;
  const backends = new Map<string, Backend>();
  const ensureHome = () => {
    fs.mkdirSync(path.join(clawpodHome, 'runs'), { recursive: true, mode: 0o700 });
    fs.chmodSync(clawpodHome, 0o700);
  };
  return {
    home,
    clawpodHome,
    env,
    store() {
      if (!store) { ensureHome(); store = openStore(path.join(clawpodHome, 'clawpod.db')); }
      return store;
    },
    backend(name = 'bwrap') {
      if (LATER_BACKENDS[name]) throw new PodError(LATER_BACKENDS[name]);
      if (name !== 'bwrap') throw new PodError(`unknown backend "${name}" (available: ${BACKENDS.join(', ')})`);
      let b = backends.get(name);
      if (!b) { b = createBwrapBackend({ clawpodHome, workspaceCopy: env.CLAWPOD_WORKSPACE_COPY === '1' }); backends.set(name, b); }
      return b;
    },
    runDir: (id) => path.join(clawpodHome, 'runs', id),
    close() { store?.close(); store = null; },
  };
}
