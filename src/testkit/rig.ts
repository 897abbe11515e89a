// A clawpod home, a workspace and a context whose only backend is a fake one: what a unit test
// of core needs to drive a whole run without root, bwrap or a built prelude.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { auditEvents, type AuditEvent } from '../audit/chain.js';
import { createContext, type BackendRegistry, type Context } from '../core/context.js';
import { createFakeBackend, type FakeBackend, type FakeBackendOptions } from './fake-backend.js';

export interface Rig {
  base: string;
  home: string;
  /** The workspace (a realpath). */
  ws: string;
  ctx: Context;
  backend: FakeBackend;
  /** A run's audit events, in order. */
  audit(runId: string): AuditEvent[];
  /** The run directories under the rig's clawpod home. */
  runDirs(): string[];
  /** A policy file in the rig's base (YAML text), returned as its path. */
  policy(yaml: string): string;
  cleanup(): void;
}

export interface RigOptions extends FakeBackendOptions {
  /** The workspace's files, by relative path. */
  files?: Record<string, string>;
  /** The registry given to the context (default: { fake: the rig's backend }). */
  backends?: (fake: FakeBackend) => BackendRegistry;
}

export function createRig(o: RigOptions = {}): Rig {
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-rig-')));
  const home = path.join(base, 'home');
  const ws = path.join(base, 'ws');
  fs.mkdirSync(home);
  fs.mkdirSync(ws);
  for (const [rel, text] of Object.entries(o.files ?? {})) {
    fs.mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
    fs.writeFileSync(path.join(ws, rel), text);
  }
  const backend = createFakeBackend({ stateDir: path.join(base, 'fake'), ...o });
  const env = { HOME: home, CLAWPOD_HOME: path.join(home, '.clawpod'), PATH: process.env.PATH };
  const ctx = createContext(env, { backends: o.backends ? o.backends(backend) : { fake: () => backend } });
  let n = 0;
  return {
    base,
    home,
    ws,
    ctx,
    backend,
    audit: (runId) => [...auditEvents(path.join(ctx.runDir(runId), 'audit.jsonl'))],
    runDirs: () => {
      try {
        return fs.readdirSync(path.join(ctx.clawpodHome, 'runs'));
      } catch {
        return [];
      }
    },
    policy(yaml) {
      const p = path.join(base, `policy-${++n}.yaml`);
      fs.writeFileSync(p, yaml);
      return p;
    },
    cleanup() {
      ctx.close();
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}
