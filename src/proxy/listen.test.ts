// The egress socket is the pod's alone: it is never, even for a moment, connectable by others.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { listen } from './server.js';

test('the socket file is born 0600 whatever the umask (before any chmod)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-listen-'));
  const server = http.createServer();
  const old = process.umask(0);
  t.after(() => {
    process.umask(old);
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const sock = path.join(dir, 'p.sock');
  await listen(server, sock);
  assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
  assert.equal(process.umask(), 0, "the process's umask is given back");
});
