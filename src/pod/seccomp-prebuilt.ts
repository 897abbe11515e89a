// The seccomp programs, generated at bundle time by buildSeccompProgram (scripts/bundle.mjs)
// and inlined, so the CLI does not regenerate them on every start. Unbundled: undefined.
import { hostArch, buildSeccompProgram } from './seccomp.js';

declare const __CLAWPOD_SECCOMP__: Record<string, string> | undefined;

export function seccompProgram(): Buffer {
  const arch = hostArch();
  const prebuilt = typeof __CLAWPOD_SECCOMP__ === 'undefined' ? undefined : __CLAWPOD_SECCOMP__[arch];
  return prebuilt ? Buffer.from(prebuilt, 'base64') : buildSeccompProgram(arch);
}
