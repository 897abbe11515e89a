// Helpers for this folder's tests: real temp directories laid out as a workspace plus a change
// set, the way the pod layer leaves them.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface Fixture {
  base: string;
  /** The user's workspace. */
  ws: string;
  /** The change set directory; `tree` is CS/tree. */
  cs: string;
  tree: string;
  cleanup(): void;
}

export function fixture(): Fixture {
  const base = mkdtempSync(join(tmpdir(), 'clawpod-ws-test-'));
  const ws = join(base, 'ws');
  const cs = join(base, 'cs');
  const tree = join(cs, 'tree');
  mkdirSync(ws);
  mkdirSync(tree, { recursive: true });
  return { base, ws, cs, tree, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

/** Writes a file (creating parents) with an exact mode, independent of the umask. */
export function put(dir: string, rel: string, content: string | Buffer, mode = 0o644): void {
  const abs = join(dir, rel);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, content);
  chmodSync(abs, mode);
}

export function mkdir(dir: string, rel: string, mode = 0o755): void {
  const abs = join(dir, rel);
  mkdirSync(abs, { recursive: true });
  chmodSync(abs, mode);
}

export function link(dir: string, rel: string, target: string): void {
  const abs = join(dir, rel);
  mkdirSync(dirname(abs), { recursive: true });
  symlinkSync(target, abs);
}

/** deleted.lst / opaque.lst: NUL-terminated relpaths. */
export function writeList(cs: string, name: 'deleted.lst' | 'opaque.lst', paths: string[]): void {
  writeFileSync(join(cs, name), paths.map((p) => p + '\0').join(''));
}
