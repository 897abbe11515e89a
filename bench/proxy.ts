// Egress proxy figures, each against its direct baseline in the same run (loopback only).
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startPodProxy } from '../src/proxy/index.js';

const MiB = 1 << 20;

function get(opts: http.RequestOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...opts, agent: false }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end();
  });
}

async function p50(n: number, fn: () => Promise<void>): Promise<number> {
  for (let i = 0; i < 20; i++) await fn();
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    xs.push(performance.now() - t);
  }
  return xs.sort((a, b) => a - b)[Math.floor(n / 2)];
}

/** Reads `total` bytes through a CONNECT tunnel on the proxy's unix socket. */
function tunnelDownload(socketPath: string, host: string, port: number, total: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let got = -1;
    let started = 0;
    s.on('connect', () => s.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`));
    s.on('data', (d: Buffer) => {
      if (got < 0) {
        const end = d.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!d.subarray(0, 12).toString().includes('200')) {
          reject(new Error(d.toString().split('\r\n')[0]));
          s.destroy();
          return;
        }
        started = performance.now();
        got = d.length - end - 4;
      } else got += d.length;
      if (got >= total) {
        s.destroy();
        resolve(got / MiB / ((performance.now() - started) / 1000));
      }
    });
    s.on('error', reject);
  });
}

export async function proxyMetrics(put: (name: string, value: number, unit: string) => void): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-bench-proxy-'));
  const server = http.createServer((_req, res) => res.end('ok\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const total = 512 * MiB;
  const chunk = Buffer.alloc(MiB, 7);
  const blob = net.createServer((c) => {
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!c.write(chunk)) {
          c.once('drain', pump);
          return;
        }
      }
      c.end();
    };
    c.on('error', () => {});
    pump();
  });
  await new Promise<void>((r) => blob.listen(0, '127.0.0.1', r));
  const blobPort = (blob.address() as AddressInfo).port;
  const socketPath = path.join(dir, 'proxy.sock');
  const proxy = await startPodProxy({
    socketPath,
    pod: 'bench',
    secrets: [],
    onEvent: () => {},
    network: { allow: [`svc.test:${port}`, `blob.test:${blobPort}`], deny: [], hosts: { 'svc.test': '127.0.0.1', 'blob.test': '127.0.0.1' } },
  });
  try {
    const direct = await p50(300, () => get({ host: '127.0.0.1', port, path: '/' }));
    const proxied = await p50(300, () => get({ socketPath, path: `http://svc.test:${port}/`, headers: { host: `svc.test:${port}` } }));
    put('proxy_direct_request_p50_ms', direct, 'ms');
    put('proxy_added_latency_p50_ms', proxied - direct, 'ms');
    put('proxy_throughput_mib_s', await tunnelDownload(socketPath, 'blob.test', blobPort, total), 'MiB/s');
  } finally {
    await proxy.close();
    server.close();
    blob.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
