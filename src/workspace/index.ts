// The workspace module: manifests, change sets, their diff, and applying them.
export type { Change, ChangeKind, EntryInfo, EntryType, Manifest } from './types.js';
export { ChangeSetError, UnsafePathError, WorkspaceChangedError } from './errors.js';
export { advanceManifest, loadManifest, saveManifest, statEntry, takeManifest, walkEntries } from './manifest.js';
export { loadChangeSet, PERM_MASK, readChangeSet } from './changeset.js';
export type { ChangeSetOptions, LoadedChangeSet } from './changeset.js';
export { applyNotes, diffChunks, diffStat, formatBytes, ignoredLine, renderDiff, renderReview } from './diff.js';
export type { DiffStat, IgnoredNote, RenderOptions, ReviewNotes } from './diff.js';
export { flagChanges, isGitPath } from './flags.js';
export type { Flag } from './flags.js';
export { removeTree } from './remove.js';
export { applyChangeSet } from './apply.js';
export type { ApplyOptions, ApplyResult } from './apply.js';
export { ignoreMatcher, loadIgnoreSources, readIgnoreSources, rootsText, ruleCapLine, saveIgnoreSources, writeIgnoredManifest } from './ignore.js';
export type { IgnoredSummary, IgnoreMatcher, IgnoreSources } from './ignore.js';
export { pathPredicate, pickedChanges, selectChanges, splitSpecs } from './select.js';
export { nameLines, statLines } from './stat.js';
export { validateRelPath } from './paths.js';
export { escapeText, quotePath, shortPath } from './quote.js';
