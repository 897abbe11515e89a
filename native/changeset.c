/*
 * The pod's change set, made by the prelude: a private copy of the workspace for copy mode, and
 * the change set (format in changeset.h) harvested from the overlay's upper dir or, in copy
 * mode, from comparing the copy with the workspace. Runs as the prelude's user (root in
 * privileged mode) over a tree the pod shaped at will, so: every step is relative to an open
 * directory (depth never meets PATH_MAX, and a symlink is never followed), the walk keeps its
 * own stack (depth costs no C stack), everything the host would store is counted against the
 * pod's caps before it is written, and a change set is published whole or not at all.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "changeset.h"

/* Room left in a host path for apply's temp name beside a file (".clawpod-<12 hex>.tmp"). */
#define APPLY_MARGIN 64

/* ---- the walk: one frame per open directory, and the relpath of the current entry ---- */
struct frame {
  DIR *dir;          /* the directory being read */
  int out;           /* its copy on the destination side, or -1 */
  int peer;          /* the same relpath on the other side being compared (copy mode), or -1 */
  size_t rel_len;    /* length of this directory's relpath */
  mode_t mode;       /* given to `out` once everything below it is written */
};

struct walk {
  struct frame st[HARVEST_MAX_DEPTH + 2];  /* removing DIR.partial takes one more: its tree/ */
  int top;
  char rel[PATH_MAX];
  size_t rel_len;
  const char *name;  /* the current entry's name (inside rel) */
};

enum mode { COPY_WORKSPACE, HARVEST_UPPER, HARVEST_COPY, LIST_DELETED, REMOVE };

struct harvest {
  struct walk w;
  enum mode mode;
  int userns;
  unsigned long long bytes, entries, max_bytes, max_entries;
  size_t max_rel;
  FILE *deleted, *opaque;
  struct harvest_report *rep;
};

static void escape(const char *s, size_t len, char *out, size_t n) {
  size_t o = 0, i;
  for (i = 0; i < len && o + 8 < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\') { out[o++] = '\\'; out[o++] = '\\'; }
    else if (c >= 0x20 && c < 0x7f) out[o++] = (char)c;
    else o += (size_t)snprintf(out + o, n - o, "\\%03o", c);
  }
  if (i < len && o + 4 < n) { memcpy(out + o, "...", 3); o += 3; }
  out[o] = 0;
}

/* Records the first refusal only: later errors are consequences of unwinding it. */
static int refuse(struct harvest *h, enum harvest_result r, unsigned long long limit, const char *fmt, ...) {
  if (!h->rep || h->rep->result != HARVEST_OK) return -1;
  int saved = errno;
  char where[200];
  escape(h->w.rel, h->w.rel_len, where, sizeof where);
  h->rep->result = r;
  h->rep->limit = limit;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(h->rep->detail, sizeof h->rep->detail, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n < sizeof h->rep->detail)
    snprintf(h->rep->detail + n, sizeof h->rep->detail - (size_t)n, r == HARVEST_FAILED ? " %s: %s" : " %s",
             where[0] ? where : ".", strerror(saved));
  errno = saved;
  return -1;
}

static int failed(struct harvest *h, const char *what) { return refuse(h, HARVEST_FAILED, 0, "%s", what); }

static int push(struct harvest *h, int src, int out, int peer, mode_t mode) {
  struct walk *w = &h->w;
  DIR *d = src >= 0 ? fdopendir(src) : NULL;
  if (!d || w->top + 1 >= HARVEST_MAX_DEPTH + (h->mode == REMOVE)) {
    if (d) closedir(d); else if (src >= 0) close(src);
    if (out >= 0) close(out);
    if (peer >= 0) close(peer);
    if (!d) return failed(h, "open directory");
    return refuse(h, HARVEST_TOO_DEEP, HARVEST_MAX_DEPTH, "a directory nested deeper than %d levels:", HARVEST_MAX_DEPTH);
  }
  struct frame *f = &w->st[++w->top];
  f->dir = d; f->out = out; f->peer = peer; f->rel_len = w->rel_len; f->mode = mode;
  return 0;
}

static void pop(struct walk *w) {
  struct frame *f = &w->st[w->top--];
  closedir(f->dir);
  if (f->out >= 0) { fchmod(f->out, f->mode); close(f->out); }
  if (f->peer >= 0) close(f->peer);
  w->rel_len = f->rel_len;
  w->rel[w->rel_len] = 0;
}

/* The next entry of the top directory, with rel set to its relpath; 0 when it has no more. */
volatile sig_atomic_t harvest_abandoned;

static int next(struct harvest *h) {
  struct walk *w = &h->w;
  struct frame *f = &w->st[w->top];
  struct dirent *e;
  /* clawpod is gone (or stopped us): nobody will ever review this, so stop copying now. */
  if (harvest_abandoned) { errno = ECANCELED; return failed(h, "harvest (clawpod went away)"); }
  do {
    errno = 0;
    e = readdir(f->dir);
    if (!e) return errno ? failed(h, "read directory") : 0;
  } while (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0);
  size_t n = strlen(e->d_name), at = f->rel_len ? f->rel_len + 1 : 0;
  w->rel_len = f->rel_len;
  w->rel[w->rel_len] = 0;
  if (at + n >= sizeof w->rel) { errno = ENAMETOOLONG; return refuse(h, HARVEST_TOO_DEEP, h->max_rel, "a path too long for the host below"); }
  if (at) w->rel[f->rel_len] = '/';
  memcpy(w->rel + at, e->d_name, n + 1);
  w->rel_len = at + n;
  w->name = w->rel + at;
  return 1;
}

static int valid_utf8(const unsigned char *s) {
  while (*s) {
    unsigned c = *s, cp, min;
    int n;
    if (c < 0x80) { s++; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; min = 0x10000; }
    else return 0;
    for (int i = 1; i <= n; i++) {  /* a NUL ends the loop here: it is no continuation byte */
      if ((s[i] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    s += n + 1;
  }
  return 1;
}

/* Counts the current entry against the caps, before anything of it is written. */
static int count(struct harvest *h, unsigned long long bytes) {
  struct walk *w = &h->w;
  if (h->mode == COPY_WORKSPACE || h->mode == REMOVE) return 0;
  if (!valid_utf8((const unsigned char *)w->name))
    return refuse(h, HARVEST_BAD_NAME, 0, "a name that is not valid UTF-8:");
  if (w->rel_len > h->max_rel)
    return refuse(h, HARVEST_TOO_DEEP, h->max_rel, "a path longer than the host can review and apply (%zu bytes, at most %zu):", w->rel_len, h->max_rel);
  if (++h->entries > h->max_entries)
    return refuse(h, HARVEST_OVER_ENTRIES, h->max_entries, "more than %llu files, directories and deletions, the pod's cap; the first over it:", h->max_entries);
  if (bytes > h->max_bytes - h->bytes)
    return refuse(h, HARVEST_OVER_SIZE, h->max_bytes, "more than the disk cap of %llu bytes in all (a sparse file counts at its full size); the first over it:", h->max_bytes);
  h->bytes += bytes;
  return 0;
}

static int write_all_at(int fd, const char *buf, size_t n, off_t at) {
  while (n > 0) {
    ssize_t k = pwrite(fd, buf, n, at);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    buf += k; n -= (size_t)k; at += k;
  }
  return 0;
}

/* Copies the data extents of `in` (64-bit offsets throughout) and leaves holes as holes. */
static int copy_data(int in, int out, off_t size) {
  static char buf[1 << 17];
  for (off_t pos = 0; pos < size;) {
    off_t data = lseek(in, pos, SEEK_DATA), end;
    if (data < 0 && errno == ENXIO) break;  /* nothing but a hole up to the end */
    if (data < 0 && errno == EINVAL) { data = pos; end = size; }  /* no SEEK_DATA here: all data */
    else if (data < 0 || (end = lseek(in, data, SEEK_HOLE)) < 0) return -1;
    if (end > size) end = size;
    for (off_t at = data; at < end;) {
      size_t want = end - at < (off_t)sizeof buf ? (size_t)(end - at) : sizeof buf;
      ssize_t n = pread(in, buf, want, at);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) errno = EIO;  /* it shrank while being copied */
      if (n <= 0 || write_all_at(out, buf, (size_t)n, at) != 0) return -1;
      at += n;
    }
    pos = end;
  }
  return ftruncate(out, size);
}

/* The mode an entry keeps on the host. Unprivileged, clawpod reads the change set as its owner
 * without any override, so the owner keeps read (and search) access: a pod's chmod 0 must not
 * lock the user's own review out. */
static mode_t keep_mode(const struct harvest *h, mode_t mode, mode_t owner) {
  return (mode & 0777) | (h->userns && h->mode != COPY_WORKSPACE ? owner : 0);
}

/* A regular file into the destination directory. Modes never carry set-id bits: this copy runs
 * as root, and a root-owned setuid file with content the pod chose must never exist on the host. */
static int copy_file(struct harvest *h, int src_dir, int out_dir, const char *name, const struct stat *st) {
  int in = openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (in < 0) return failed(h, "open");
  int out = openat(out_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) { close(in); return failed(h, "create"); }
  int rc = copy_data(in, out, st->st_size) == 0 && fchmod(out, keep_mode(h, st->st_mode, 0600)) == 0 ? 0 : -1;
  if (rc != 0) failed(h, "copy");
  close(in);
  if (close(out) != 0 && rc == 0) rc = failed(h, "write");
  return rc;
}

static ssize_t read_link(int dir, const char *name, char *target, size_t n) {
  ssize_t len = readlinkat(dir, name, target, n);
  if (len >= (ssize_t)n) { errno = ENAMETOOLONG; return -1; }
  if (len >= 0) target[len] = 0;
  return len;
}

/* The current directory entry, a directory: made on the destination side and descended into. */
static int descend(struct harvest *h, int src_dir, int out_dir, int peer, mode_t mode) {
  const char *name = h->w.name;
  if (h->mode != REMOVE && h->w.top + 1 >= HARVEST_MAX_DEPTH) {  /* before anything is made of it */
    if (peer >= 0) close(peer);
    return refuse(h, HARVEST_TOO_DEEP, HARVEST_MAX_DEPTH, "a directory nested deeper than %d levels:", HARVEST_MAX_DEPTH);
  }
  int src = openat(src_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int out = -1;
  if (src >= 0 && out_dir >= 0) {
    /* 0700 while it is filled (a 0555 dir could not be), its own mode once done. */
    if (mkdirat(out_dir, name, 0700) == 0 || errno == EEXIST)
      out = openat(out_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (out < 0) { close(src); if (peer >= 0) close(peer); return failed(h, "create directory"); }
  }
  if (src < 0) { if (peer >= 0) close(peer); return failed(h, "open directory"); }
  return push(h, src, out, peer, keep_mode(h, mode, 0700));
}

static int list_add(struct harvest *h, FILE *list) {
  if (count(h, 0) != 0) return -1;
  return fwrite(h->w.rel, 1, h->w.rel_len + 1, list) == h->w.rel_len + 1 ? 0 : failed(h, "write a list at");
}

static int is_opaque(struct harvest *h, int src_dir) {
  char v[8];
  int fd = openat(src_dir, h->w.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = fgetxattr(fd, h->userns ? "user.overlay.opaque" : "trusted.overlay.opaque", v, sizeof v);
  close(fd);
  return n == 1 && v[0] == 'y';
}

/* One entry of a plain copy (copy_workspace) or of the overlay's upper dir. */
static int visit_upper(struct harvest *h) {
  struct frame *f = &h->w.st[h->w.top];
  int src = dirfd(f->dir);
  const char *name = h->w.name;
  struct stat st;
  char target[PATH_MAX];
  if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return failed(h, "stat");
  if (h->mode == HARVEST_UPPER && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) return list_add(h, h->deleted);
  if (S_ISDIR(st.st_mode)) {
    if (count(h, 0) != 0) return -1;
    if (h->mode == HARVEST_UPPER && is_opaque(h, src) && fwrite(h->w.rel, 1, h->w.rel_len + 1, h->opaque) != h->w.rel_len + 1)
      return failed(h, "write opaque.lst at");
    return descend(h, src, f->out, -1, st.st_mode);
  }
  if (S_ISLNK(st.st_mode)) {
    ssize_t n = read_link(src, name, target, sizeof target);
    if (n < 0) return failed(h, "read link");
    if (count(h, (unsigned long long)n) != 0) return -1;
    return symlinkat(target, f->out, name) == 0 ? 0 : failed(h, "create link");
  }
  if (S_ISREG(st.st_mode)) return count(h, (unsigned long long)st.st_size) != 0 ? -1 : copy_file(h, src, f->out, name, &st);
  return 0;  /* sockets, fifos and devices are not part of a change set */
}

static int same_content(int dir_a, int dir_b, const char *name) {
  int fa = openat(dir_a, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  int fb = openat(dir_b, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  int same = fa >= 0 && fb >= 0;
  static char ba[65536], bb[65536];
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

/* Copy mode, first pass: every entry of the pod's copy that differs from the workspace goes into
 * the tree (every directory too, as the parent of what changed). */
static int visit_copy(struct harvest *h) {
  struct frame *f = &h->w.st[h->w.top];
  int src = dirfd(f->dir);
  const char *name = h->w.name;
  struct stat st, ost;
  char target[PATH_MAX], old[PATH_MAX];
  if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return failed(h, "stat");
  int same_type = f->peer >= 0 && fstatat(f->peer, name, &ost, AT_SYMLINK_NOFOLLOW) == 0
    && (ost.st_mode & S_IFMT) == (st.st_mode & S_IFMT);
  if (S_ISDIR(st.st_mode)) {
    if (count(h, 0) != 0) return -1;
    int peer = same_type ? openat(f->peer, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    return descend(h, src, f->out, peer, st.st_mode);
  }
  if (S_ISLNK(st.st_mode)) {
    ssize_t n = read_link(src, name, target, sizeof target);
    if (n < 0) return failed(h, "read link");
    if (same_type && read_link(f->peer, name, old, sizeof old) == n && memcmp(old, target, (size_t)n) == 0) return 0;
    if (count(h, (unsigned long long)n) != 0) return -1;
    return symlinkat(target, f->out, name) == 0 ? 0 : failed(h, "create link");
  }
  if (!S_ISREG(st.st_mode)) return 0;
  if (same_type && ost.st_size == st.st_size && (ost.st_mode & 0777) == (st.st_mode & 0777) && same_content(f->peer, src, name))
    return 0;
  return count(h, (unsigned long long)st.st_size) != 0 ? -1 : copy_file(h, src, f->out, name, &st);
}

/* Copy mode, second pass over the workspace: what the copy lacks is deleted (a whole subtree as
 * one entry). Only directories both sides have are descended into. */
static int visit_deleted(struct harvest *h) {
  struct frame *f = &h->w.st[h->w.top];
  struct stat st, mst;
  const char *name = h->w.name;
  if (fstatat(dirfd(f->dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0) return failed(h, "stat");
  if (fstatat(f->peer, name, &mst, AT_SYMLINK_NOFOLLOW) != 0) return list_add(h, h->deleted);
  if (!S_ISDIR(st.st_mode) || !S_ISDIR(mst.st_mode)) return 0;  /* retyped: the tree replaces it */
  int peer = openat(f->peer, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (peer < 0) return failed(h, "open directory");
  return descend(h, dirfd(f->dir), -1, peer, 0);
}

static int visit_remove(struct harvest *h) {
  struct frame *f = &h->w.st[h->w.top];
  int dir = dirfd(f->dir);
  if (unlinkat(dir, h->w.name, 0) == 0) return 0;
  if (errno != EISDIR) return failed(h, "remove");
  if (fchmodat(dir, h->w.name, 0700, 0) != 0) {}  /* a 0000 dir we made must still be emptied */
  return descend(h, dir, -1, -1, 0);
}

/* Walks `root` (an open directory, taken over), calling the mode's visitor on each entry. */
static int walk(struct harvest *h, int root, int out, int peer) {
  static int (*const visit[])(struct harvest *) = { visit_upper, visit_upper, visit_copy, visit_deleted, visit_remove };
  struct walk *w = &h->w;
  int rc = 0;
  w->top = -1;
  w->rel_len = 0;
  w->rel[0] = 0;
  if (push(h, root, out, peer, 0700) != 0) return -1;
  while (w->top >= 0) {
    int more = rc == 0 ? next(h) : 0;
    if (more < 0) rc = -1;
    if (more > 0 && visit[h->mode](h) != 0) rc = -1;
    if (more > 0) continue;
    /* A directory being removed goes once it is empty: after the pop, rel is its own relpath. */
    pop(w);
    if (h->mode != REMOVE || w->top < 0) continue;
    size_t own = w->st[w->top].rel_len ? w->st[w->top].rel_len + 1 : 0;
    if (unlinkat(dirfd(w->st[w->top].dir), w->rel + own, AT_REMOVEDIR) != 0) rc = failed(h, "remove directory");
  }
  return rc;
}

static int open_dir(const char *path) { return open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); }

/* Removes a tree of our own making, without ever following a link in it. */
static int remove_tree(const char *path) {
  struct harvest h;
  memset(&h, 0, sizeof h);
  h.mode = REMOVE;
  int fd = open_dir(path);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  if (walk(&h, fd, -1, -1) != 0) return -1;
  return rmdir(path);
}

void copy_workspace(const char *from, const char *to) {
  static struct harvest h;
  struct harvest_report rep = {0};
  memset(&h, 0, sizeof h);
  h.mode = COPY_WORKSPACE;
  h.rep = &rep;
  int src = open_dir(from), out = open_dir(to);
  if (src < 0 || out < 0) { if (src >= 0) close(src); if (out >= 0) close(out); failed(&h, "open"); }
  else walk(&h, src, out, -1);
  if (rep.result != HARVEST_OK) {
    fprintf(stderr, "clawpod: cannot copy the workspace into the pod: %s (it must fit the policy's disk cap)\n", rep.detail);
    exit(125);
  }
}

static int open_list(struct harvest *h, int dir, const char *name, FILE **list) {
  int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  *list = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (*list) return 0;
  if (fd >= 0) close(fd);
  return failed(h, name);
}

static int close_list(struct harvest *h, FILE **list) {
  int rc = *list && fclose(*list) != 0 ? failed(h, "write a list") : 0;
  *list = NULL;
  return rc;
}

/* Fills the change set directory `cs`: tree/ and the lists. */
static int harvest_into(struct harvest *h, const char *stage, int cs, int copy) {
  char upper[PATH_MAX], lower[PATH_MAX], ws[PATH_MAX];
  snprintf(upper, sizeof upper, "%s/upper", stage);
  snprintf(lower, sizeof lower, "%s/lower", stage);
  snprintf(ws, sizeof ws, "%s/ws", stage);
  if (mkdirat(cs, "tree", 0700) != 0) return failed(h, "create tree/ in the change set");
  int tree = openat(cs, "tree", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (tree < 0) return failed(h, "open tree/ in the change set");
  int rc = open_list(h, cs, "deleted.lst", &h->deleted);
  if (rc == 0 && !copy) rc = open_list(h, cs, "opaque.lst", &h->opaque);
  if (rc != 0) close(tree);
  else if (!copy) {
    h->mode = HARVEST_UPPER;
    rc = walk(h, open_dir(upper), tree, -1);
  } else {
    h->mode = HARVEST_COPY;
    rc = walk(h, open_dir(ws), tree, open_dir(lower));
    h->mode = LIST_DELETED;
    if (rc == 0) rc = walk(h, open_dir(lower), -1, open_dir(ws));
  }
  if (close_list(h, &h->deleted) != 0) rc = -1;
  if (close_list(h, &h->opaque) != 0) rc = -1;
  return rc;
}

static int upper_is_empty(const char *stage) {
  char upper[PATH_MAX];
  snprintf(upper, sizeof upper, "%s/upper", stage);
  DIR *d = opendir(upper);
  if (!d) return 0;
  struct dirent *e;
  int empty = 1;
  while (empty && (e = readdir(d)) != NULL) empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
  closedir(d);
  return empty;
}

void harvest_changes(const char *stage, const char *dest, int copy, int userns,
                     const struct harvest_caps *caps, struct harvest_report *rep) {
  static struct harvest h;
  memset(&h, 0, sizeof h);
  memset(rep, 0, sizeof *rep);
  h.rep = rep;
  h.userns = userns;
  h.max_bytes = caps->max_bytes;
  h.max_entries = caps->max_entries ? caps->max_entries : caps->max_bytes / 4096 > 1024 ? caps->max_bytes / 4096 : 1024;
  /* A relpath is later appended to the workspace and to DEST/tree, with room for apply's temp
   * name: a longer one could be harvested here but never reviewed or applied. */
  size_t prefix = strlen(dest) + strlen("/tree");
  if (caps->host_prefix > prefix) prefix = caps->host_prefix;
  h.max_rel = prefix + 1 + APPLY_MARGIN < PATH_MAX - 1 ? PATH_MAX - 1 - APPLY_MARGIN - prefix - 1 : 0;
  if (!copy && upper_is_empty(stage)) return;  /* no change set at all when nothing changed */
  char partial[PATH_MAX];
  if ((size_t)snprintf(partial, sizeof partial, "%s.partial", dest) >= sizeof partial) {
    errno = ENAMETOOLONG;
    failed(&h, "name the change set");
    return;
  }
  /* Built aside and renamed into place when whole: a harvest cut short (the prelude killed)
   * leaves nothing that could be mistaken for a change set. */
  remove_tree(partial);
  int rc = mkdir(partial, 0700) == 0 ? 0 : failed(&h, "create the change set");
  int cs = rc == 0 ? open_dir(partial) : -1;
  if (rc == 0 && cs < 0) rc = failed(&h, "open the change set");
  if (rc == 0) rc = harvest_into(&h, stage, cs, copy);
  if (cs >= 0) close(cs);
  if (rc == 0 && harvest_abandoned) { errno = ECANCELED; rc = failed(&h, "harvest (clawpod went away)"); }
  if (rc == 0 && rename(partial, dest) != 0) rc = failed(&h, "publish the change set");
  if (rc == 0) return;
  if (rep->result == HARVEST_OK) { errno = EIO; failed(&h, "harvest"); }
  remove_tree(partial);
}

static const char *const reasons[] = { "ok", "over_size", "over_entries", "too_deep", "bad_name", "failed" };
static const char *const fixes[] = {
  "",
  "raise resources.disk in the policy, or keep big or sparse files out of /workspace",
  "raise resources.disk in the policy (it sets this cap too), or keep generated trees out of /workspace",
  "keep the trees in /workspace shallower",
  "give it a UTF-8 name inside the pod before it ends",
  "check the free space and permissions under $CLAWPOD_HOME, then run again",
};

void harvest_tell(const struct harvest_report *rep, int status_fd) {
  if (status_fd >= 0) {
    char line[sizeof rep->detail + 128];
    int n = snprintf(line, sizeof line, "harvest=%s\nharvest_limit=%llu\nharvest_detail=%s\n",
                     reasons[rep->result], rep->limit, rep->detail);
    if (n > 0 && write(status_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0) {}
  }
  if (rep->result != HARVEST_OK)
    fprintf(stderr, "clawpod: the pod's workspace changes were discarded: %s (%s)\n", rep->detail, fixes[rep->result]);
}
