/* The change set of a pod, made by its prelude (see changeset.c).
 *
 * On-disk format of a change set DIR (read by src/workspace/changeset.ts):
 *   DIR/tree/        every entry the pod added or changed, at its relpath: directories, regular
 *                    files (holes kept as holes, modes & 0777: never set-id; unprivileged, the
 *                    owner keeps rw on files and rwx on dirs, so its own review can read them),
 *                    symlinks (target copied verbatim, never followed). Nothing else (no fifo,
 *                    socket, device).
 *   DIR/deleted.lst  relpaths the pod deleted, each followed by one NUL byte ("a\0b/c\0"); a
 *                    deleted directory is one entry for its whole subtree.
 *   DIR/opaque.lst   relpaths of directories the pod replaced (rm -r then mkdir): nothing of the
 *                    workspace below them survives. Same NUL-terminated format (overlay mode only).
 * Relpaths are the bytes of the names joined by '/', no leading '/', never "." or "..". NUL
 * separation represents any name, newlines included. Every name is valid UTF-8 (a change set
 * holding any other name is refused whole: the host side works in UTF-8 strings, where two
 * different byte names could read as the same path).
 *
 * A change set exists whole or not at all: it is built in DIR.partial and renamed to DIR only
 * when complete; anything short of that is removed, and the prelude reports why.
 */
#ifndef CLAWPOD_CHANGESET_H
#define CLAWPOD_CHANGESET_H

#include <signal.h>

#include <stddef.h>

/* Deeper trees are refused: the host tools that review and apply a change set then never meet
 * a tree they cannot walk, and the walk here holds a few descriptors per level. */
#define HARVEST_MAX_DEPTH 256

enum harvest_result {
  HARVEST_OK,            /* DIR is the change set (or absent: the pod changed nothing) */
  HARVEST_OVER_SIZE,     /* apparent bytes (holes count in full) above max_bytes */
  HARVEST_OVER_ENTRIES,  /* entries (tree + deleted.lst) above max_entries */
  HARVEST_TOO_DEEP,      /* nested deeper than HARVEST_MAX_DEPTH, or a path too long for the host */
  HARVEST_BAD_NAME,      /* a name that is not valid UTF-8 */
  HARVEST_FAILED,        /* the host could not store it (errno in the detail) */
};

struct harvest_caps {
  unsigned long long max_bytes;    /* the pod's disk cap */
  unsigned long long max_entries;  /* the stage's inode cap */
  size_t host_prefix;              /* longest host directory a relpath is appended to */
};

struct harvest_report {
  enum harvest_result result;
  unsigned long long limit;        /* the cap that was passed, 0 when none applies */
  char detail[512];                /* one line of printable ASCII: what and where */
};

/* Copies the workspace tree `from` into `to` (copy mode); exits 125 when it does not fit. */
void copy_workspace(const char *from, const char *to);

/* Writes the change set of the pod staged at `stage` into `dest` within `caps`. Never exits:
 * on any refusal or failure nothing is left at dest (or dest.partial) and `rep` says why. */
void harvest_changes(const char *stage, const char *dest, int copy_mode, int userns_mode,
                     const struct harvest_caps *caps, struct harvest_report *rep);

/* Reports the harvest: "harvest=ok|over_size|over_entries|too_deep|bad_name|failed",
 * "harvest_limit=N" and "harvest_detail=TEXT" lines on status_fd (when >= 0), and for a refused
 * change set one line on stderr naming the problem and the fix. */
void harvest_tell(const struct harvest_report *rep, int status_fd);

/* Set from a signal handler when clawpod has gone away (or stopped the pod): the harvest stops
 * at its next entry and removes what it copied, publishing nothing. */
extern volatile sig_atomic_t harvest_abandoned;

#endif
