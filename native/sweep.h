/* The end-of-pod set-id sweep of the writable attachments (see sweep.c). */
#ifndef CLAWPOD_SWEEP_H
#define CLAWPOD_SWEEP_H

#include <time.h>

struct sweep_result {
  long visited;    /* entries examined */
  long swept;      /* entries whose set-id bits were cleared */
  long unswept;    /* set-id entries that could not be cleared, or parts of the tree left unchecked */
  int incomplete;  /* the walk stopped early (work cap, or the tree changed under it) */
};

/* Clears S_ISUID and S_ISGID on every entry under `root` (the root included) changed at or after
 * `since`, except directories created before it. Never follows a symlink or crosses a mount; looks
 * at no more than `max_entries` entries. Adds to `r`. */
void sweep_setid(const char *root, const struct timespec *since, long max_entries, struct sweep_result *r);

/* podinit, once the pod has ended: sweeps the workspace when `ws_mode` is "rw" (at STAGE/lower) and
 * each attachment whose mode is "rw" (at STAGE/mnt/I), counting changes from just before this
 * process started. Writes "setid_swept=N\n", and "setid_unswept=M\n" when M > 0, to `status_fd`. */
void sweep_rw_attachments(const char *stage, const char *ws_mode, int n_attach, const char *const attach_mode[],
                          int status_fd);

/* Before the pod starts: the number of set-id programs (setuid, or setgid and group-executable
 * regular files) under `root`, without changing anything; the first one's name goes to `first`.
 * `*incomplete` is set when the walk could not look at everything (work cap, unreadable dirs). */
long find_setid_files(const char *root, long max_entries, char *first, size_t first_size, int *incomplete);

/* Before the pod starts: exits 125 with one line if a writable workspace (STAGE/lower) or mount
 * (STAGE/mnt/I) holds a set-id program, or could not be checked whole. */
void refuse_setid_programs(const char *stage, const char *ws_mode, const char *ws_src, int n_attach,
                           const char *const attach_mode[], const char *const attach_src[]);

#endif
