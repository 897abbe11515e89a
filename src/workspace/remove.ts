// Removing a tree a pod shaped: Node 20's fs.rmSync recurses once per level (a 2000-deep tree
// overflows the call stack) and works on whole paths (past PATH_MAX it fails). This walk keeps
// its own stack, handles names as raw bytes (a non-UTF-8 name is removed like any other), and
// moves a subtree up to the top when its path grows long, so no path it uses nears PATH_MAX.
import { chmodSync, lstatSync, readdirSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

/** Past this many bytes a directory is renamed to a short name below the root first: each step
 *  then resolves a short path, so removal stays linear in the depth. */
const LONG_PATH = 512;
const SLASH = Buffer.from('/');

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Names in a directory as bytes; a directory the pod made unreadable is opened up first. */
function listNames(dir: Buffer): Buffer[] {
  try {
    return readdirSync(dir, { encoding: 'buffer' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw e;
    chmodSync(dir, 0o700);
    return readdirSync(dir, { encoding: 'buffer' });
  }
}

/**
 * Removes `target` and everything below it, like `rm -rf`: a missing target is fine, symlinks
 * are unlinked and never followed. Throws on the first entry it cannot remove.
 */
export function removeTree(target: string): void {
  const root = Buffer.from(target);
  const st = lstatSync(root, { throwIfNoEntry: false });
  if (st === undefined) return;
  if (!st.isDirectory()) {
    unlinkSync(root);
    return;
  }
  const tag = randomBytes(4).toString('hex');
  let moved = 0;
  // Each frame is listed once, then removed once everything below it is gone.
  const stack: { dir: Buffer; listed: boolean }[] = [{ dir: root, listed: false }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.listed) {
      stack.pop();
      try {
        rmdirSync(top.dir);
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
      continue;
    }
    top.listed = true;
    for (const name of listNames(top.dir)) {
      let child = Buffer.concat([top.dir, SLASH, name]);
      const cst = lstatSync(child, { throwIfNoEntry: false });
      if (cst === undefined) continue;
      if (!cst.isDirectory()) {
        unlinkSync(child);
        continue;
      }
      if (child.length > LONG_PATH && top.dir !== root) {
        // Out of the deep chain and up to the root, where its own path is short again.
        const short = Buffer.concat([root, Buffer.from(`/.clawpod-rm-${tag}-${moved++}`)]);
        renameSync(child, short);
        child = short;
      }
      stack.push({ dir: child, listed: false });
    }
  }
}
