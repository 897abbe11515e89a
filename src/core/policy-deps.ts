// What policy normalization reads of this host: paths, the password database (every home on
// the host gets the credential deny list), $SUDO_USER. The policy module itself stays pure.
import fs from 'node:fs';
import type { NormalizeDeps } from '../policy/normalize.js';
import type { Context } from './context.js';

// One read of the password database per command: the policy and the workspace are checked back
// to back with the same context.
const cache = new WeakMap<object, NormalizeDeps>();

export function policyDeps(ctx: Pick<Context, 'home' | 'clawpodHome' | 'env'>): NormalizeDeps {
  let deps = cache.get(ctx);
  if (!deps) cache.set(ctx, (deps = readPolicyDeps(ctx)));
  return deps;
}

function readPolicyDeps(ctx: Pick<Context, 'home' | 'clawpodHome' | 'env'>): NormalizeDeps {
  let passwd = '';
  // Unreadable is not fatal: the caller's and root's homes are denied without it, and the
  // by-name rule (.ssh, .gnupg anywhere) still holds for every other home.
  try {
    passwd = fs.readFileSync('/etc/passwd', 'utf8');
  } catch {
    /* see above */
  }
  return {
    home: ctx.home,
    clawpodHome: ctx.clawpodHome,
    realpath: (p) => fs.realpathSync(p),
    // A path we may not look at (EACCES for a non-root caller under /root) is not "missing": the
    // list then keeps it as named, which still denies it.
    exists: (p) => {
      try {
        return fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
      } catch {
        return true;
      }
    },
    passwd,
    sudoUser: ctx.env.SUDO_USER || undefined,
  };
}
