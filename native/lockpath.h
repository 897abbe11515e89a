/* The name of clawpod's lock file for a directory (podinit takes it shared for a writable pod,
 * wsapply exclusively for an apply): both programs must spell it the same. */
#ifndef CLAWPOD_LOCKPATH_H
#define CLAWPOD_LOCKPATH_H

#include <stdio.h>
#include <sys/stat.h>

/* Writes DIR/DEV-INO.lock into p; returns 0, or -1 when it does not fit. */
static inline int lock_path(char *p, size_t n, const char *dir, const struct stat *st) {
  int k = snprintf(p, n, "%s/%llu-%llu.lock", dir, (unsigned long long)st->st_dev, (unsigned long long)st->st_ino);
  return k < 0 || (size_t)k >= n ? -1 : 0;
}

#endif
