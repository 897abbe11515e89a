import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { HostLayout } from './bwrap-argv.js';
import { podCommand } from './command.js';

const layout = { usrLinks: { '/bin': 'usr/bin' } } as unknown as HostLayout;
const SH = ['/bin/sh', '-c', 'exec "$0" "$@"'];

test("a command on the pod PATH or under /usr is exec'd directly", () => {
  const [resolved, ...rest] = podCommand(['true'], layout, null, 'none');
  assert.match(resolved, /^\/usr\/(local\/)?bin\/true$/);
  assert.deepEqual(rest, []);
  assert.deepEqual(podCommand(['/bin/echo', 'x'], layout, null, 'none'), ['/bin/echo', 'x']);
  assert.deepEqual(podCommand(['/usr/bin/env'], layout, null, 'none'), ['/usr/bin/env']);
});

test('anything not plainly executable goes through sh for the 126/127 contract', () => {
  assert.deepEqual(podCommand(['no-such-cmd-xyz', 'a'], layout, null, 'none'), [...SH, 'no-such-cmd-xyz', 'a']);
  assert.deepEqual(podCommand(['/etc/passwd'], layout, null, 'none'), [...SH, '/etc/passwd'], "host /etc is not the pod's");
  assert.deepEqual(podCommand(['/usr'], layout, null, 'none'), [...SH, '/usr'], 'a directory is not executable');
});

test('workspace-relative commands resolve against the workspace, unless there is none', () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-cmd-'));
  fs.writeFileSync(path.join(ws, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
  fs.writeFileSync(path.join(ws, 'data.txt'), 'x', { mode: 0o644 });
  assert.deepEqual(podCommand(['./run.sh'], layout, ws, 'overlay'), ['/workspace/run.sh']);
  assert.deepEqual(podCommand(['/workspace/run.sh'], layout, ws, 'ro'), ['/workspace/run.sh']);
  assert.deepEqual(podCommand(['./data.txt'], layout, ws, 'overlay'), [...SH, './data.txt']);
  assert.deepEqual(podCommand(['./run.sh'], layout, ws, 'none'), [...SH, './run.sh']);
  fs.rmSync(ws, { recursive: true });
});
