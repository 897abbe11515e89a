// The workspace module: manifests, change sets, their diff, and applying them.
export type { Change, ChangeKind, EntryInfo, EntryType, Manifest } from './types.js';
export { ChangeSetError, UnsafePathError, WorkspaceChangedError } from './errors.js';
export { loadManifest, saveManifest, statEntry, takeManifest, walkEntries } from './manifest.js';
export { loadChangeSet, PERM_MASK, readChangeSet } from './changeset.js';
export type { ChangeSetOptions, LoadedChangeSet } from './changeset.js';
export { applyNotes, diffChunks, diffStat, renderDiff, renderReview } from './diff.js';
export type { DiffStat, ReviewNotes } from './diff.js';
export { flagChanges, isGitPath } from './flags.js';
export type { Flag } from './flags.js';
export { removeTree } from './remove.js';
export { applyChangeSet } from './apply.js';
export type { ApplyOptions } from './apply.js';
export { validateRelPath } from './paths.js';
export { escapeText, quotePath, shortPath } from './quote.js';
