import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, formatDuration, parseDuration, parseSize } from './units.js';

const Ki = 1024;
const Mi = 1024 ** 2;
const Gi = 1024 ** 3;

test('parseSize reads binary, decimal and plain byte sizes', () => {
  const cases: Array<[string | number, number]> = [
    ['0', 0],
    ['1048576', Mi],
    [4096, 4096],
    ['512Mi', 512 * Mi],
    ['2Gi', 2 * Gi],
    ['1Ti', 1024 * Gi],
    ['4Ki', 4 * Ki],
    ['1.5Gi', 1.5 * Gi],
    ['1.0000001Ki', 1024], // rounded down to whole bytes
    ['1k', 1000],
    ['1K', 1000],
    ['3M', 3e6],
    ['2G', 2e9],
    ['1T', 1e12],
    ['10KB', 10_000],
    ['10MB', 10e6],
    ['10GB', 10e9],
    [' 64Mi ', 64 * Mi],
  ];
  for (const [input, bytes] of cases) assert.equal(parseSize(input), bytes, `parseSize(${JSON.stringify(input)})`);
});

test('parseSize rejects garbage, negatives, wrong case and fractional bytes', () => {
  for (const bad of ['12Q', '', 'Mi', '-1', '-1Mi', '1.5', '512mi', '512m', '1 GiB', '1e3', '0x10', 'abc', '1Mi2', '++1']) {
    assert.throws(() => parseSize(bad), { message: `${JSON.stringify(bad)} is not a size (use e.g. 512Mi, 2Gi)` }, bad);
  }
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => parseSize(bad), /is not a size/, String(bad));
  }
  assert.throws(() => parseSize('99999999999Ti'), /is not a size/, 'beyond safe integers');
});

test('parseDuration reads units, combinations and plain seconds', () => {
  const cases: Array<[string | number, number]> = [
    [30, 30_000],
    [0.5, 500],
    ['30', 30_000],
    ['250ms', 250],
    ['30s', 30_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1m30s500ms', 90_500],
    ['1.5h', 5_400_000],
    ['7d', 7 * 86_400_000],
  ];
  for (const [input, ms] of cases) assert.equal(parseDuration(input), ms, `parseDuration(${JSON.stringify(input)})`);
});

test('parseDuration rejects garbage and negatives with a one-line hint', () => {
  for (const bad of ['abc', '', '-5s', '10 m', '1h 30m', '10x', 'm', '1hh', '5M', '30S', 's30']) {
    assert.throws(() => parseDuration(bad), { message: `${JSON.stringify(bad)} is not a duration (use e.g. 30s, 10m, 1h)` }, bad);
  }
  assert.throws(() => parseDuration(-1), /is not a duration/);
  assert.throws(() => parseDuration(Number.NaN), /is not a duration/);
});

test('formatBytes and formatDuration print what explain shows', () => {
  assert.equal(formatBytes(512 * Mi), '512 MiB');
  assert.equal(formatBytes(Gi), '1 GiB');
  assert.equal(formatBytes(1.5 * Gi), '1.5 GiB');
  assert.equal(formatBytes(4 * Ki), '4 KiB');
  assert.equal(formatBytes(100), '100 B');
  assert.equal(formatDuration(600_000), '10m');
  assert.equal(formatDuration(5_400_000), '1h30m');
  assert.equal(formatDuration(1500), '1s500ms');
  assert.equal(formatDuration(7 * 86_400_000), '7d');
  assert.equal(formatDuration(0), '0s');
  for (const ms of [250, 30_000, 5_400_000, 90_500, 7 * 86_400_000]) {
    assert.equal(parseDuration(formatDuration(ms)), ms, `round trip ${ms}`);
  }
});
