/*
 * The pod's change set, made by the prelude: a private copy of the workspace for copy mode, and
 * the change set (tree/, deleted.lst, opaque.lst) harvested from the overlay's upper dir or, in
 * copy mode, from comparing the copy with the workspace. Runs as the prelude's user (root in
 * privileged mode): it never follows a pod's symlink and never copies set-id bits.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "changeset.h"

static const char *stage, *harvest_dir;
static int userns_mode, copy_mode;

static void path_join(char *out, size_t n, const char *a, const char *b) {
  if ((size_t)snprintf(out, n, "%s/%s", a, b) >= n) { errno = ENAMETOOLONG; out[0] = 0; }
}

static int copy_file(const char *src, const char *dest, mode_t mode);


/* ---- copy mode: a private copy of the workspace on the stage, diffed against it at the end ---- */
static char copy_src[4096], copy_dst[4096];
static size_t copy_src_len;

static int copy_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)flag; (void)ftw;
  const char *rel = path + copy_src_len;
  if (*rel == '/') rel++;
  char dest[8192];
  snprintf(dest, sizeof dest, "%s/%s", copy_dst, rel);
  if (*rel == 0) return 0;
  if (S_ISDIR(st->st_mode)) return mkdir(dest, st->st_mode & 0777) == 0 || errno == EEXIST ? 0 : -1;
  if (S_ISLNK(st->st_mode)) {
    char target[4096];
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) return -1;
    target[n] = 0;
    return symlink(target, dest);
  }
  if (S_ISREG(st->st_mode)) return copy_file(path, dest, st->st_mode);
  return 0; /* sockets, fifos, devices are not copied */
}

void copy_workspace(const char *from, const char *to) {
  snprintf(copy_src, sizeof copy_src, "%s", from);
  snprintf(copy_dst, sizeof copy_dst, "%s", to);
  copy_src_len = strlen(copy_src);
  if (nftw(from, copy_entry, 64, FTW_PHYS) != 0) {
    fprintf(stderr, "clawpod: cannot copy the workspace into the pod (%s); it must fit the policy's disk cap\n", strerror(errno));
    exit(125);
  }
}

static int same_content(const char *a, const char *b) {
  int fa = open(a, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), fb = open(b, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  int same = fa >= 0 && fb >= 0;
  char ba[65536], bb[65536];
  while (same) {
    ssize_t na = read(fa, ba, sizeof ba), nb = read(fb, bb, sizeof bb);
    if (na != nb || na < 0) same = 0;
    else if (na == 0) break;
    else same = memcmp(ba, bb, (size_t)na) == 0;
  }
  if (fa >= 0) close(fa);
  if (fb >= 0) close(fb);
  return same;
}


/* ---- harvest: overlay upper dir -> change set on the host disk ---- */
static char upper_root[4096];
static size_t upper_len;
static FILE *deleted_f, *opaque_f;

/* Modes in the change set never carry set-id bits: this copy runs as root, and a root-owned
 * setuid file with content the pod chose must never exist on the host, even in a 0700 dir. */
static int copy_file(const char *src, const char *dest, mode_t mode) {
  mode &= 0777;
  int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (in < 0) return -1;
  int out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (out < 0) { close(in); return -1; }
  struct stat st;
  fstat(in, &st);
  off_t left = st.st_size;
  while (left > 0) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
    if (n <= 0) n = sendfile(out, in, NULL, (size_t)left);
    if (n <= 0) { close(in); close(out); return -1; }
    left -= n;
  }
  fchmod(out, mode);
  close(in);
  return close(out);
}

static int harvest_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)flag; (void)ftw;
  const char *rel = path + upper_len;
  if (*rel == '/') rel++;
  if (*rel == 0) return 0;
  char dest[8192];
  snprintf(dest, sizeof dest, "%s/tree/%s", harvest_dir, rel);
  if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0)) {
    fwrite(rel, 1, strlen(rel) + 1, deleted_f);
  } else if (S_ISDIR(st->st_mode)) {
    char v[8];
    ssize_t n = getxattr(path, userns_mode ? "user.overlay.opaque" : "trusted.overlay.opaque", v, sizeof v);
    if (n == 1 && v[0] == 'y') fwrite(rel, 1, strlen(rel) + 1, opaque_f);
    if (mkdir(dest, st->st_mode & 01777) != 0 && errno != EEXIST) return -1;
  } else if (S_ISLNK(st->st_mode)) {
    char target[4096];
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) return -1;
    target[n] = 0;
    if (symlink(target, dest) != 0) return -1;
  } else if (S_ISREG(st->st_mode)) {
    if (copy_file(path, dest, st->st_mode) != 0) return -1;
  }
  return 0;
}

static int upper_is_empty(void) {
  DIR *d = opendir(upper_root);
  if (!d) return 0;
  struct dirent *e;
  int empty = 1;
  while (empty && (e = readdir(d)) != NULL) empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
  closedir(d);
  return empty;
}

/* Copy mode: every entry of the pod's copy that differs from the workspace goes into the tree;
 * every workspace entry the copy lacks is listed as deleted (whole subtrees as one entry). */
static char cmp_lower[4096], cmp_copy[4096];
static size_t cmp_copy_len, cmp_lower_len;

static int harvest_copy_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)flag; (void)ftw;
  const char *rel = path + cmp_copy_len;
  if (*rel == '/') rel++;
  if (*rel == 0) return 0;
  char orig[8192], dest[8192];
  snprintf(orig, sizeof orig, "%s/%s", cmp_lower, rel);
  snprintf(dest, sizeof dest, "%s/tree/%s", harvest_dir, rel);
  struct stat ost;
  int exists = lstat(orig, &ost) == 0;
  int same_type = exists && (ost.st_mode & S_IFMT) == (st->st_mode & S_IFMT);
  if (S_ISDIR(st->st_mode)) return mkdir(dest, st->st_mode & 01777) == 0 || errno == EEXIST ? 0 : -1;
  if (S_ISLNK(st->st_mode)) {
    char target[4096], old[4096];
    ssize_t n = readlink(path, target, sizeof target - 1), m = same_type ? readlink(orig, old, sizeof old - 1) : -1;
    if (n < 0) return -1;
    target[n] = 0;
    if (m == n && memcmp(old, target, (size_t)n) == 0) return 0;
    return symlink(target, dest);
  }
  if (S_ISREG(st->st_mode)) {
    if (same_type && ost.st_size == st->st_size && (ost.st_mode & 0777) == (st->st_mode & 0777) && same_content(orig, path)) return 0;
    return copy_file(path, dest, st->st_mode);
  }
  return 0;
}

static int harvest_deleted_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st; (void)flag; (void)ftw;
  const char *rel = path + cmp_lower_len;
  if (*rel == '/') rel++;
  if (*rel == 0) return FTW_CONTINUE;
  char mine[8192];
  struct stat mst;
  snprintf(mine, sizeof mine, "%s/%s", cmp_copy, rel);
  if (lstat(mine, &mst) == 0) return FTW_CONTINUE;
  fwrite(rel, 1, strlen(rel) + 1, deleted_f);
  return S_ISDIR(st->st_mode) ? FTW_SKIP_SUBTREE : FTW_CONTINUE;
}

static int harvest_copy(void) {
  char p[8192];
  path_join(cmp_lower, sizeof cmp_lower, stage, "lower");
  path_join(cmp_copy, sizeof cmp_copy, stage, "ws");
  cmp_lower_len = strlen(cmp_lower);
  cmp_copy_len = strlen(cmp_copy);
  if (mkdir(harvest_dir, 0700) != 0 && errno != EEXIST) return -1;
  path_join(p, sizeof p, harvest_dir, "tree");
  if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
  path_join(p, sizeof p, harvest_dir, "deleted.lst");
  deleted_f = fopen(p, "we");
  if (!deleted_f) return -1;
  int rc = nftw(cmp_copy, harvest_copy_entry, 64, FTW_PHYS);
  if (rc == 0) rc = nftw(cmp_lower, harvest_deleted_entry, 64, FTW_PHYS | FTW_ACTIONRETVAL);
  if (fclose(deleted_f) != 0) rc = -1;
  return rc;
}

int harvest_changes(const char *stage_dir, const char *dest, int copy, int userns) {
  stage = stage_dir;
  harvest_dir = dest;
  copy_mode = copy;
  userns_mode = userns;
  if (copy_mode) return harvest_copy();
  char p[8192];
  path_join(upper_root, sizeof upper_root, stage, "upper");
  upper_len = strlen(upper_root);
  if (upper_is_empty()) return 0;
  if (mkdir(harvest_dir, 0700) != 0 && errno != EEXIST) return -1;
  path_join(p, sizeof p, harvest_dir, "tree");
  if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
  path_join(p, sizeof p, harvest_dir, "deleted.lst");
  deleted_f = fopen(p, "we");
  path_join(p, sizeof p, harvest_dir, "opaque.lst");
  opaque_f = fopen(p, "we");
  if (!deleted_f || !opaque_f) return -1;
  int rc = nftw(upper_root, harvest_entry, 64, FTW_PHYS);
  if (fclose(deleted_f) != 0 || fclose(opaque_f) != 0) rc = -1;
  return rc;
}

