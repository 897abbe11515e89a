/*
 * The end-of-pod set-id sweep: the second line behind the seccomp filter, which refuses every
 * set-id mode argument. A writable attachment (workspace: rw, mode: rw mounts, --memory) writes
 * straight to the host through the owner idmap, so a set-id bit the pod leaves there would make a
 * host setuid/setgid file owned by the workspace owner (root, for a root-owned workspace). Once the
 * pod has ended (all of it: its pid namespace is gone, so nothing races the walk), podinit walks each
 * writable attachment and clears S_ISUID/S_ISGID on whatever changed during the pod.
 *
 * "Changed during the pod" is ctime at or after the prelude's start: the pod cannot set a ctime (no
 * syscall writes it, and the clock is out of its reach), and every way to add a set-id bit, chmod,
 * creating a file, a setgid parent's inheritance, updates it. Pre-existing set-id entries the pod did
 * not touch keep their bits. A directory is the one exception: creating an entry in it bumps its
 * ctime, so a user's own setgid directory would lose its bit whenever the pod wrote into it. A
 * directory born (statx btime) before the pod therefore keeps its bits; the pod could only have added
 * one to it through chmod, which the filter refuses. Without btime every changed entry is cleared.
 *
 * The walk goes through the stage's mounts, exactly the trees the pod saw (including what a host
 * mount inside the source covers up). Through an idmapped mount the kernel refuses to change an inode
 * whose owner or group is unmapped (EOVERFLOW), but it refuses the pod any write to one as well, and
 * a new inode's ids are the pod's or its writable parent's: whatever the pod could make set-id, this
 * supervisor (root) can clear through the same mount. The walk uses directory fds, openat and statx
 * with AT_SYMLINK_NOFOLLOW, never enters another mount, and is iterative. Trees can be thousands
 * deep, so only the last FD_WINDOW directories along the path keep their fd; a parent beyond that is
 * reopened through ".." and checked to be the same directory. Work is capped at max_entries.
 */
#define _GNU_SOURCE
#include "sweep.h"
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sys/xattr.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define SETID (S_ISUID | S_ISGID)
#define FD_WINDOW 64
#define SWEEP_MAX_ENTRIES 1000000L
#define STATX_WANT (STATX_TYPE | STATX_MODE | STATX_INO | STATX_CTIME | STATX_BTIME | STATX_MNT_ID)

struct frame {
  int fd;            /* -1 when closed to stay within FD_WINDOW */
  dev_t dev;
  ino_t ino;
  char *names;       /* NUL-separated names of the subdirectories still to visit */
  size_t len, size, next;
};

struct walk {
  const struct timespec *since;
  long max;          /* stop once r->visited reaches this */
  unsigned long long mnt_id;
  int by_mnt_id;
  dev_t dev;
  struct sweep_result *r;
  struct frame *stack;
  size_t depth, cap;
  /* Check mode (before the pod starts): change nothing, count set-id regular files, note one. */
  int check;
  char *found;
  size_t found_size;
};

static struct timespec process_start;

/* The prelude starts before its pod, so its own start bounds every change the pod made. */
__attribute__((constructor)) static void note_process_start(void) {
  clock_gettime(CLOCK_REALTIME_COARSE, &process_start);
}

static int before(const struct statx_timestamp *t, const struct timespec *since) {
  return t->tv_sec < since->tv_sec || (t->tv_sec == since->tv_sec && t->tv_nsec < since->tv_nsec);
}

static int changed_during_pod(const struct statx *sx, const struct timespec *since) {
  if (before(&sx->stx_ctime, since)) return 0;
  if (S_ISDIR(sx->stx_mode) && (sx->stx_mask & STATX_BTIME) && before(&sx->stx_btime, since)) return 0;
  return 1;
}

static dev_t dev_of(const struct statx *sx) { return makedev(sx->stx_dev_major, sx->stx_dev_minor); }

static int same_mount(const struct walk *w, const struct statx *sx) {
  if (w->by_mnt_id && (sx->stx_mask & STATX_MNT_ID)) return sx->stx_mnt_id == w->mnt_id;
  return dev_of(sx) == w->dev;
}

/* chmod of exactly the inode FD holds (O_PATH fds have no fchmod: go through its /proc link). */
static int chmod_fd(int fd, mode_t mode) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  return chmod(link, mode);
}

/* Clears the bits on dirfd/name (name "" = dirfd itself) without following a symlink: an O_PATH
 * fd pins the inode, and the change goes to exactly that inode. */
/* File capabilities (security.capability) make a program privileged as surely as a set-id bit,
 * and they too survive a write through a shared mapping. Read on the entry itself, by its
 * directory's descriptor, never following a final symlink. */
static int has_fcaps(int dirfd, const char *name) {
  char p[64 + NAME_MAX];
  if ((size_t)snprintf(p, sizeof p, *name ? "/proc/self/fd/%d/%s" : "/proc/self/fd/%d", dirfd, name) >= sizeof p) return 0;
  return lgetxattr(p, "security.capability", NULL, 0) >= 0;
}

static void clear_setid(struct walk *w, int dirfd, const char *name, const struct statx *sx, int caps) {
  if (w->check) {
    mode_t m = sx->stx_mode;
    /* Any set-id regular file: writes through a shared mapping keep its bit, and a setgid file
     * without group-exec becomes a setgid program by an ACL (setxattr) that keeps the bit. */
    if (S_ISREG(m) && ((m & (S_ISUID | S_ISGID)) || caps)) {
      if (w->r->swept++ == 0 && w->found) snprintf(w->found, w->found_size, "%s", *name ? name : "(the attachment itself)");
    }
    return;
  }
  int fd = *name ? openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC) : dirfd;
  struct stat st;
  mode_t mode = sx->stx_mode & 07777 & ~SETID;
  int ok = fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == sx->stx_ino && !S_ISLNK(st.st_mode);
  if (ok && (sx->stx_mode & SETID)) ok = chmod_fd(fd, mode) == 0;
  if (ok && caps) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ok = removexattr(link, "security.capability") == 0 || errno == ENODATA;
  }
  if (ok) w->r->swept++;
  else w->r->unswept++;
  if (fd >= 0 && fd != dirfd) close(fd);
}

static int add_name(struct frame *f, const char *name) {
  size_t n = strlen(name) + 1;
  if (f->len + n > f->size) {
    size_t size = f->size ? f->size * 2 : 256;
    while (size < f->len + n) size *= 2;
    char *grown = realloc(f->names, size);
    if (!grown) return -1;
    f->names = grown;
    f->size = size;
  }
  memcpy(f->names + f->len, name, n);
  f->len += n;
  return 0;
}

/* Checks every entry of the top directory, fixing set-id ones and noting subdirectories.
 * Returns -1 when the walk must stop (work cap, no memory). */
static int scan_top(struct walk *w) {
  struct frame *f = &w->stack[w->depth - 1];
  int dfd = dup(f->fd);
  DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
  if (!d) {
    if (dfd >= 0) close(dfd);
    w->r->unswept++;
    return 0;
  }
  int rc = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    const char *name = de->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    if (w->r->visited >= w->max) { rc = -1; break; }
    w->r->visited++;
    struct statx sx;
    if (statx(f->fd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_WANT, &sx) != 0) {
      if (errno != ENOENT) w->r->unswept++;
      continue;
    }
    if (!same_mount(w, &sx)) continue;
    int caps = S_ISREG(sx.stx_mode) && has_fcaps(f->fd, name);
    if (((sx.stx_mode & SETID) || caps) && !S_ISLNK(sx.stx_mode) && changed_during_pod(&sx, w->since))
      clear_setid(w, f->fd, name, &sx, caps);
    if (S_ISDIR(sx.stx_mode) && add_name(f, name) != 0) { rc = -1; break; }
  }
  closedir(d);
  return rc;
}

static int push(struct walk *w, int fd, const struct statx *sx) {
  if (w->depth == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 64;
    struct frame *grown = realloc(w->stack, cap * sizeof *grown);
    if (!grown) return -1;
    w->stack = grown;
    w->cap = cap;
  }
  w->stack[w->depth++] = (struct frame){ .fd = fd, .dev = dev_of(sx), .ino = sx->stx_ino };
  if (w->depth > FD_WINDOW) {
    struct frame *old = &w->stack[w->depth - 1 - FD_WINDOW];
    if (old->fd >= 0) { close(old->fd); old->fd = -1; }
  }
  return 0;
}

/* Leaves the top directory; reopens its parent through ".." if the parent's fd was closed. */
static int pop(struct walk *w) {
  struct frame *top = &w->stack[w->depth - 1];
  int rc = 0;
  if (w->depth >= 2 && w->stack[w->depth - 2].fd < 0) {
    struct frame *parent = &w->stack[w->depth - 2];
    int fd = openat(top->fd, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == parent->dev && st.st_ino == parent->ino) parent->fd = fd;
    else { if (fd >= 0) close(fd); rc = -1; }
  }
  if (top->fd >= 0) close(top->fd);
  free(top->names);
  w->depth--;
  return rc;
}

/* Descends into the top directory's next subdirectory. Returns -1 when the walk must stop. */
static int descend(struct walk *w) {
  struct frame *f = &w->stack[w->depth - 1];
  const char *name = f->names + f->next;
  f->next += strlen(name) + 1;
  int fd = openat(f->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct statx sx;
  if (fd < 0 || statx(fd, "", AT_EMPTY_PATH, STATX_WANT, &sx) != 0 || !same_mount(w, &sx)) {
    if (fd >= 0) close(fd);
    else if (errno == ENOENT) return 0;
    w->r->unswept++;
    return 0;
  }
  if (push(w, fd, &sx) != 0) { close(fd); return -1; }
  return scan_top(w);
}

static void walk_tree(const char *root, const struct timespec *since, long max_entries, struct sweep_result *r,
                      char *found, size_t found_size);

void sweep_setid(const char *root, const struct timespec *since, long max_entries, struct sweep_result *r) {
  walk_tree(root, since, max_entries, r, NULL, 0);
}

long find_setid_files(const char *root, long max_entries, char *first, size_t first_size, int *incomplete) {
  static const struct timespec epoch = { 0, 0 };
  struct sweep_result r = {0};
  if (first_size) first[0] = 0;
  walk_tree(root, &epoch, max_entries, &r, first, first_size ? first_size : 1);
  *incomplete = r.incomplete || r.unswept > 0;
  return r.swept;
}

static void walk_tree(const char *root, const struct timespec *since, long max_entries, struct sweep_result *r,
                      char *found, size_t found_size) {
  struct walk w = { .since = since, .max = r->visited + max_entries, .r = r, .check = found != NULL, .found = found, .found_size = found_size };
  struct statx sx;
  int pfd = open(root, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (pfd < 0 || statx(pfd, "", AT_EMPTY_PATH, STATX_WANT, &sx) != 0) {
    if (pfd >= 0) close(pfd);
    r->unswept++;
    r->incomplete = 1;
    return;
  }
  w.mnt_id = sx.stx_mnt_id;
  w.by_mnt_id = (sx.stx_mask & STATX_MNT_ID) != 0;
  w.dev = dev_of(&sx);
  r->visited++;
  int caps = S_ISREG(sx.stx_mode) && has_fcaps(pfd, "");
  if (((sx.stx_mode & SETID) || caps) && !S_ISLNK(sx.stx_mode) && changed_during_pod(&sx, since)) clear_setid(&w, pfd, "", &sx, caps);
  int fd = S_ISDIR(sx.stx_mode) ? openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  close(pfd);
  if (!S_ISDIR(sx.stx_mode)) return;
  int stop = fd < 0 || push(&w, fd, &sx) != 0 || scan_top(&w) != 0;
  if (fd >= 0 && w.depth == 0) close(fd);
  while (!stop && w.depth > 0) {
    struct frame *top = &w.stack[w.depth - 1];
    stop = top->next < top->len ? descend(&w) != 0 : pop(&w) != 0;
  }
  if (stop) {
    r->unswept++;
    r->incomplete = 1;
  }
  while (w.depth > 0) {
    struct frame *top = &w.stack[--w.depth];
    if (top->fd >= 0) close(top->fd);
    free(top->names);
  }
  free(w.stack);
}

void sweep_rw_attachments(const char *stage, const char *ws_mode, int n_attach, const char *const attach_mode[],
                          int status_fd) {
  /* Whole seconds, one back: filesystems that keep whole seconds (and coarse clocks) stamp a change
   * made just after the start with an earlier time. Counting a little too much only clears more. */
  struct timespec since = { process_start.tv_sec - 1, 0 };
  struct sweep_result r = {0};
  char path[4096];
  int any = 0;
  for (int i = -1; i < n_attach; i++) {  /* -1: the workspace */
    const char *mode = i < 0 ? ws_mode : attach_mode[i];
    if (!mode || strcmp(mode, "rw") != 0) continue;
    any = 1;
    size_t n = i < 0 ? (size_t)snprintf(path, sizeof path, "%s/lower", stage)
                     : (size_t)snprintf(path, sizeof path, "%s/mnt/%d", stage, i);
    if (n < sizeof path) sweep_setid(path, &since, SWEEP_MAX_ENTRIES - r.visited, &r);
    else r.unswept++;
  }
  if (!any || status_fd < 0) return;
  /* clawpod records these (policy.deny, guard.degraded); a lost line only loses the record. */
  if (dprintf(status_fd, "setid_swept=%ld\n", r.swept) > 0 && r.unswept > 0)
    dprintf(status_fd, "setid_unswept=%ld\n", r.unswept);
}

/* Host names may hold any byte: what reaches the user's terminal is printable ASCII or \xNN. */
static void escape_name(char *name) {
  char out[512];
  size_t o = 0;
  for (const unsigned char *c = (const unsigned char *)name; *c && o + 5 < sizeof out; c++) {
    if (*c >= 0x20 && *c < 0x7f && *c != '\\') out[o++] = (char)*c;
    else o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", *c);
  }
  out[o] = 0;
  memcpy(name, out, o + 1);
}

/* A set-id program already in a writable attachment would stay set-id while the pod rewrites it
 * (a write through a shared mapping keeps the bit), so the pod never starts with one there. The
 * seccomp filter stops new ones, and the sweep at the end is the second line. */
void refuse_setid_programs(const char *stage, const char *ws_mode, const char *ws_src, int n_attach,
                           const char *const attach_mode[], const char *const attach_src[]) {
  char p[4096], first[512];
  for (int i = -1; i < n_attach; i++) {
    const char *mode = i < 0 ? ws_mode : attach_mode[i];
    const char *src = i < 0 ? ws_src : attach_src[i];
    if (!mode || !src || strcmp(mode, "rw") != 0) continue;
    size_t len = i < 0 ? (size_t)snprintf(p, sizeof p, "%s/lower", stage) : (size_t)snprintf(p, sizeof p, "%s/mnt/%d", stage, i);
    if (len >= sizeof p) { fprintf(stderr, "clawpod: stage path too long\n"); exit(125); }
    int incomplete = 0;
    long n = find_setid_files(p, 1000000L, first, sizeof first, &incomplete);
    escape_name(first);
    if (n > 0) {
      fprintf(stderr, "clawpod: refusing a writable %s holding %ld set-id or capability-bearing file(s) (first: %s in %s): clear them (chmod u-s,g-s; setcap -r) or attach it read-only or as overlay\n",
              i < 0 ? "workspace" : "mount", n, first, src);
      exit(125);
    }
    if (incomplete) {
      fprintf(stderr, "clawpod: refusing a writable %s that could not be checked for set-id programs (%s: too many entries or unreadable parts): use overlay or read-only\n",
              i < 0 ? "workspace" : "mount", src);
      exit(125);
    }
  }
}

