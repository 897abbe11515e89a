// The audit record of a change set when a run ends: one file.write per reviewed change (the
// DESIGN.md contract: path, bytes, sha256), and for the changes the run's ignore rules keep
// apart one files.ignored event (count, bytes, and the sha256 of their manifest, kept with the
// run as ignored.jsonl), so an npm install's 20k files cost one line, not 20k, yet stay
// tamper-evident. Fail closed: what cannot be recorded whole is never kept for apply.
import fs from 'node:fs';
import path from 'node:path';
import type { AuditWriter } from '../audit/chain.js';
import {
  ChangeSetError,
  ignoreMatcher,
  loadChangeSet,
  loadIgnoreSources,
  removeTree,
  ruleCapLine,
  saveIgnoreSources,
  writeIgnoredManifest,
} from '../workspace/index.js';
import type { Manifest } from '../workspace/types.js';

/** Where a run keeps its ignore rules and its ignored changes' manifest (beside changes/). */
export const IGNORE_FILE = 'ignore.json';
export const IGNORED_MANIFEST = 'ignored.jsonl';
export const IGNORED_SUMMARY = 'ignored.json';

function discard(changesDir: string, why: string, notice: (line: string) => void): number {
  notice(`clawpod: the pod's workspace changes were discarded: ${why}`);
  removeTree(changesDir);
  return 0;
}

/** Returns how many paths changed (reviewed and ignored); 0 when the change set was discarded. */
export function recordChangeSet(
  audit: Pick<AuditWriter, 'append'>,
  changesDir: string,
  workspace: string,
  manifest: Manifest,
  policyIgnore: string[],
  notice: (line: string) => void = () => {},
): number {
  const runDir = path.dirname(changesDir);
  let loaded: ReturnType<typeof loadChangeSet>;
  try {
    // The .gitignore rules were read when the run started (snapshot); the policy's join them here.
    const sources = loadIgnoreSources(path.join(runDir, IGNORE_FILE));
    if (policyIgnore.length > 0) saveIgnoreSources(path.join(runDir, IGNORE_FILE), { ...sources, policy: policyIgnore });
    // The audit records everything the pod changed, .git included (review leaves it out by default).
    const matcher = ignoreMatcher({ ...sources, policy: policyIgnore });
    const capped = ruleCapLine(matcher);
    if (capped) notice(capped);
    loaded = loadChangeSet(changesDir, workspace, manifest, { includeGit: true, ignore: matcher });
  } catch (e) {
    if (!(e instanceof ChangeSetError)) throw e;
    audit.append('policy.deny', { reason: `change set discarded: ${e.message}` });
    return discard(changesDir, e.message, notice);
  }
  const { changes, ignored } = loaded;
  const total = changes.length + ignored.length;
  const full = `the audit log reached its size cap before all ${total} changes were recorded (raise CLAWPOD_AUDIT_MAX_BYTES, or change fewer files)`;
  for (const c of changes) {
    const recorded = audit.append(
      'file.write',
      c.kind === 'deleted' ? { path: c.path, kind: c.kind, deleted: true } : { path: c.path, kind: c.kind, bytes: c.bytes ?? 0, sha256: c.sha256 ?? null },
    );
    // A change the log could not record is never offered for apply, nor is the rest of its set.
    if (recorded === null) return discard(changesDir, full, notice);
  }
  if (ignored.length > 0) {
    let sum: ReturnType<typeof writeIgnoredManifest>;
    try {
      sum = writeIgnoredManifest(path.join(runDir, IGNORED_MANIFEST), ignored, loaded.ignoredRoots);
      fs.writeFileSync(path.join(runDir, IGNORED_SUMMARY), JSON.stringify(sum), { mode: 0o600 });
    } catch (e) {
      // Fail closed, but the run's own result (exit code, audit) is kept: only its changes go.
      const why = `the ignored changes' manifest could not be written (${(e as Error).message})`;
      audit.append('policy.deny', { reason: `change set discarded: ${why}` });
      fs.rmSync(path.join(runDir, IGNORED_MANIFEST), { force: true });
      return discard(changesDir, why, notice);
    }
    const recorded = audit.append('files.ignored', {
      count: sum.count,
      bytes: sum.bytes,
      sha256: sum.sha256,
      manifest: IGNORED_MANIFEST,
      roots: sum.roots.slice(0, 20),
    });
    if (recorded === null) return discard(changesDir, full, notice);
  }
  if (total === 0) removeTree(changesDir);
  return total;
}

/** The ignored count recorded when the run ended (0 when none or unknown). */
export function ignoredAtEnd(runDir: string): number {
  try {
    const n = (JSON.parse(fs.readFileSync(path.join(runDir, IGNORED_SUMMARY), 'utf8')) as { count?: unknown }).count;
    return typeof n === 'number' && Number.isSafeInteger(n) ? n : 0;
  } catch {
    return 0;
  }
}
