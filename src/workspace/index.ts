// The workspace module: manifests, change sets, their diff, and applying them.
export type { Change, ChangeKind, EntryInfo, EntryType, Manifest } from './types.js';
export { ChangeSetError, UnsafePathError, WorkspaceChangedError } from './errors.js';
export { loadManifest, saveManifest, statEntry, takeManifest, walkEntries } from './manifest.js';
export { loadChangeSet, PERM_MASK, readChangeSet } from './changeset.js';
export type { LoadedChangeSet } from './changeset.js';
export { diffStat, renderDiff } from './diff.js';
export type { DiffStat } from './diff.js';
export { applyChangeSet } from './apply.js';
export type { ApplyOptions } from './apply.js';
export { validateRelPath } from './paths.js';
export { quotePath } from './quote.js';
