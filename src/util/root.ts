// The checkout clawpod runs from, found upward from this module: it is either in dist/src/...
// (compiled) or in dist/bundle/ (the CLI bundle). Native parts are located from here.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageRoot(): string {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'native', 'podinit.c'))) return (cached = dir);
    dir = path.dirname(dir);
  }
  return (cached = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..'));
}
