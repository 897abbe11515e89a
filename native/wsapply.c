/*
 * clawpod-wsapply: performs every write, delete and chmod of `clawpod runs apply`, so that none
 * of them can be redirected out of the workspace. apply.ts checks the change set and builds the
 * plan; this helper executes it.
 *
 * Usage: clawpod-wsapply WORKSPACE TREE|- < PLAN
 *
 * Every path is resolved relative to a descriptor of the workspace root (or of the change set's
 * tree) with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS): a directory
 * swapped for a symlink at any moment makes the step fail (ELOOP), it is never followed. Where
 * openat2 is missing (ENOSYS) each component is opened on its own with O_NOFOLLOW instead. The
 * last component is then acted on with *at calls relative to its parent's descriptor.
 * Running as root, workspace steps run with the workspace owner's fsuid/fsgid/groups (taken
 * from the root descriptor), so even a path the checks missed could only reach what the owner
 * can; the fsuid goes back to ours only to read the change set, which is clawpod's own.
 *
 * PLAN on stdin: NUL-terminated fields, "wsapply1", then "create-parents" or "existing-parents",
 * then steps:
 *   rm REL            remove REL (a whole directory tree, iteratively); absent is fine
 *   sweep REL         remove entries of directory REL that the tree's REL lacks
 *   mkdir REL         make REL a directory (0700; chmod sets the final mode)
 *   write REL MODE    REL = the tree's regular file REL: temp file beside it, fsync, rename
 *   symlink REL       REL = a symlink with the target of the tree's REL
 *   chmod REL MODE T  chmod REL, which must be of type T (f, d or o = special file)
 * MODE is octal; set-id and sticky bits are always masked off. Missing parents of write,
 * symlink and mkdir are made only with create-parents (apply --force). Output: "ok N" per step,
 * then "done N"; the first failure prints one line "fail N ERRNAME PREFIXLEN message" (PREFIXLEN:
 * bytes of REL naming the component at fault, 0 when unknown) and exits 1. Step 0 is set-up.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include "lockpath.h"
#include <signal.h>
#include <sys/prctl.h>
#include <sys/file.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#define MAX_PLAN (256u << 20)
#define RESOLVE_FLAGS (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

static int root_fd = -1, tree_fd = -1, use_openat2 = 1, switch_ids = 0, create_parents = 0;
static uid_t owner_uid;
static gid_t owner_gid;
static unsigned long step;
static size_t bad_len; /* bytes of the current REL naming the component at fault */

static void fail_named(const char *name, const char *what, const char *why) {
  printf("fail %lu %s %zu %s: %s\n", step, name, bad_len, what, why);
  fflush(stdout);
  exit(1);
}

static void fail(const char *what) {
  int e = errno ? errno : EINVAL;
  const char *name = strerrorname_np(e);
  fail_named(name ? name : "EIO", what, strerror(e));
}

static void fail_with(int e, const char *what) { errno = e; fail(what); }

/* fsuid/fsgid of the workspace owner for workspace steps, ours (root) for the change set;
 * checked, since setfsuid reports no failure. */
static void become(uid_t uid, gid_t gid) {
  if (!switch_ids) return;
  setfsgid(gid);
  setfsuid(uid);
  if ((uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid) fail_with(EPERM, "setfsuid");
}
#define as_owner() become(owner_uid, owner_gid)
#define as_self() become(0, 0)

/* One component, never followed: O_PATH|O_NOFOLLOW then a type check on what was opened. */
static int open_component(int dirfd, const char *name, int create) {
  if (!*name || !strcmp(name, ".") || !strcmp(name, "..")) { errno = EINVAL; return -1; }
  int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create) {
    if (mkdirat(dirfd, name, 0777) != 0 && errno != EEXIST) return -1;
    fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  }
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) { if (fd >= 0) close(fd); return -1; }
  if (S_ISDIR(st.st_mode)) return fd;
  close(fd);
  errno = S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
  return -1;
}

/* The directory REL (len bytes of rel) below base, component by component; sets bad_len. */
static int walk_dir(int base, const char *rel, size_t len, int create) {
  int fd = fcntl(base, F_DUPFD_CLOEXEC, 0);
  char name[NAME_MAX + 1];
  size_t i = 0;
  while (fd >= 0 && i < len) {
    size_t j = i;
    while (j < len && rel[j] != '/') j++;
    if (j - i > NAME_MAX) { close(fd); errno = ENAMETOOLONG; return -1; }
    memcpy(name, rel + i, j - i);
    name[j - i] = 0;
    int next = open_component(fd, name, create);
    int e = errno;
    close(fd);
    if (next < 0) { bad_len = j; errno = e; return -1; }
    fd = next;
    i = j + 1;
  }
  return fd;
}

/* O_PATH descriptor of the directory REL below base: openat2, or the walk without it. */
static int open_dir(int base, const char *rel, size_t len, int create) {
  if (len == 0) return fcntl(base, F_DUPFD_CLOEXEC, 0);
  if (use_openat2 && len < PATH_MAX) {
    char path[PATH_MAX];
    memcpy(path, rel, len);
    path[len] = 0;
    struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_FLAGS };
    int fd, tries = 0;
    do fd = (int)syscall(SYS_openat2, base, path, &how, sizeof how); while (fd < 0 && errno == EAGAIN && ++tries < 100);
    if (fd >= 0) return fd;
    if (errno == ENOSYS) use_openat2 = 0;
    else if (!(create && errno == ENOENT)) {
      int e = errno;
      int probe = walk_dir(base, rel, len, 0); /* only to name the component at fault */
      if (probe >= 0) close(probe);
      errno = e;
      return -1;
    }
  }
  return walk_dir(base, rel, len, create);
}

/* The parent directory of REL and REL's last component. */
static int open_parent(int base, const char *rel, int create, const char **last) {
  const char *slash = strrchr(rel, '/');
  *last = slash ? slash + 1 : rel;
  if (!**last || !strcmp(*last, ".") || !strcmp(*last, "..")) { errno = EINVAL; return -1; }
  return open_dir(base, rel, slash ? (size_t)(slash - rel) : 0, create);
}

struct frame { DIR *dir; char *name; };

/* Removes name below dirfd and, for a directory, everything in it: an explicit stack, so depth
 * costs descriptors (the limit is raised to the hard one), not C stack. Links are unlinked. */
static int rm_tree(int base, const char *name) {
  if (unlinkat(base, name, 0) == 0 || errno == ENOENT) return 0;
  if (errno != EISDIR) return -1;
  struct frame *stack = NULL;
  size_t depth = 0, cap = 0;
  const char *next = name;
  int parent = base, rc = -1;
  for (;;) {
    if (next) { /* descend into parent/next */
      if (depth == cap && !(stack = realloc(stack, (cap = cap ? cap * 2 : 16) * sizeof *stack))) goto out;
      int fd = openat(parent, next, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      DIR *d = fd < 0 ? NULL : fdopendir(fd);
      if (!d) { if (fd >= 0) close(fd); goto out; }
      stack[depth++] = (struct frame){ d, strdup(next) };
      if (!stack[depth - 1].name) goto out;
      next = NULL;
    }
    struct frame *top = &stack[depth - 1];
    errno = 0;
    struct dirent *e = readdir(top->dir);
    if (e) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      if (unlinkat(dirfd(top->dir), e->d_name, 0) == 0 || errno == ENOENT) continue;
      if (errno != EISDIR) goto out;
      parent = dirfd(top->dir);
      next = e->d_name;
      continue;
    }
    if (errno) goto out;
    int up = depth > 1 ? dirfd(stack[depth - 2].dir) : base;
    if (unlinkat(up, top->name, AT_REMOVEDIR) != 0 && errno != ENOENT) goto out;
    closedir(top->dir);
    free(top->name);
    if (--depth == 0) { rc = 0; goto out; }
    rewinddir(stack[depth - 1].dir); /* it changed under the stream: read it afresh */
  }
out:;
  int err = errno;
  while (depth > 0) { closedir(stack[depth - 1].dir); free(stack[--depth].name); }
  free(stack);
  errno = err;
  return rc;
}

/* Whatever is at parent/last that is a directory goes (write and symlink rename over the rest). */
static void clear_dir_at(int parent, const char *last) {
  struct stat st;
  if (fstatat(parent, last, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) return;
  if (rm_tree(parent, last) != 0) fail("remove");
}

static void temp_name(char *out) {
  unsigned char r[6];
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) fail("getrandom");
  snprintf(out, 32, ".clawpod-%02x%02x%02x%02x%02x%02x.tmp", r[0], r[1], r[2], r[3], r[4], r[5]);
}

/* The change set's regular file REL, opened with our own fsuid. */
static int open_source(const char *rel) {
  const char *last;
  as_self();
  int dir = tree_fd < 0 ? (errno = ENOENT, -1) : open_parent(tree_fd, rel, 0, &last);
  int fd = dir < 0 ? -1 : openat(dir, last, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) { close(fd); fd = -1; errno = EINVAL; }
  if (dir >= 0) close(dir);
  bad_len = 0;
  if (fd < 0) fail_named("ESOURCE", "change set", strerror(errno));
  as_owner();
  return fd;
}

static int copy_fd(int in, int out) {
  static char buf[1 << 18];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return (int)n;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, (size_t)(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return -1;
      off += w;
    }
  }
}

static void do_write(const char *rel, mode_t mode) {
  int src = open_source(rel);
  const char *last;
  int dir = open_parent(root_fd, rel, create_parents, &last);
  if (dir < 0) fail("open parent");
  clear_dir_at(dir, last);
  char tmp[32];
  temp_name(tmp);
  int out = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) fail("create temp file");
  int ok = copy_fd(src, out) == 0 && fchmod(out, mode) == 0 && fsync(out) == 0;
  ok = close(out) == 0 && ok;
  if (!ok || renameat(dir, tmp, dir, last) != 0) {
    int e = errno;
    unlinkat(dir, tmp, 0);
    fail_with(e, "write");
  }
  close(src);
  close(dir);
}

static void do_symlink(const char *rel) {
  const char *last, *src_last;
  char target[PATH_MAX + 1];
  as_self();
  int sdir = tree_fd < 0 ? (errno = ENOENT, -1) : open_parent(tree_fd, rel, 0, &src_last);
  ssize_t n = sdir < 0 ? -1 : readlinkat(sdir, src_last, target, PATH_MAX);
  if (sdir >= 0) close(sdir);
  bad_len = 0;
  if (n <= 0) fail_named("ESOURCE", "change set", n == 0 ? "empty link" : strerror(errno));
  target[n] = 0;
  as_owner();
  int dir = open_parent(root_fd, rel, create_parents, &last);
  if (dir < 0) fail("open parent");
  clear_dir_at(dir, last);
  char tmp[32];
  temp_name(tmp);
  if (symlinkat(target, dir, tmp) != 0) fail("symlink");
  if (renameat(dir, tmp, dir, last) != 0) { int e = errno; unlinkat(dir, tmp, 0); fail_with(e, "symlink"); }
  close(dir);
}

static void do_mkdir(const char *rel) {
  const char *last;
  struct stat st;
  int dir = open_parent(root_fd, rel, create_parents, &last);
  if (dir < 0) fail("open parent");
  if (fstatat(dir, last, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) { close(dir); return; }
    if (rm_tree(dir, last) != 0) fail("remove");
  }
  if (mkdirat(dir, last, 0700) != 0) fail("mkdir");
  close(dir);
}

static void do_rm(const char *rel) {
  const char *last;
  int dir = open_parent(root_fd, rel, 0, &last);
  if (dir < 0 && errno == ENOENT) return; /* nothing below a missing directory exists either */
  if (dir < 0) fail("open parent");
  if (rm_tree(dir, last) != 0) fail("remove");
  close(dir);
}

static void do_sweep(const char *rel) {
  const char *last;
  int parent = open_parent(root_fd, rel, 0, &last);
  /* Not a real directory path (now): nothing to sweep, and nothing is written through it. */
  if (parent < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)) return;
  if (parent < 0) fail("open parent");
  int fd = openat(parent, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)) { close(parent); return; }
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) fail("open directory");
  as_self();
  int tdir = tree_fd < 0 ? -1 : open_dir(tree_fd, rel, strlen(rel), 0);
  bad_len = 0;
  if (tdir < 0) fail("change set directory");
  for (;;) { /* a name the tree lacks is removed; the stream is read afresh after each removal */
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) { if (errno) fail("read directory"); break; }
    struct stat st;
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (fstatat(tdir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) continue;
    if (errno != ENOENT) fail("change set directory");
    as_owner();
    if (rm_tree(dirfd(d), e->d_name) != 0) fail("remove");
    as_self();
    rewinddir(d);
  }
  as_owner();
  close(tdir);
  closedir(d);
  close(parent);
}

static void do_chmod(const char *rel, mode_t mode, char type) {
  const char *last;
  struct stat st;
  int dir = open_parent(root_fd, rel, 0, &last);
  if (dir < 0) fail("open parent");
  int fd = openat(dir, last, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) != 0) fail("chmod");
  char t = S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 'o';
  if (t != type) { bad_len = strlen(rel); fail_named("ETYPE", "chmod", "changed type"); }
  /* A mode change acts on the inode: through a hard link it would reach a file outside the
   * workspace (a pnpm store, a host file linked in). Writes never do (temp file + rename). */
  if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
    bad_len = strlen(rel);
    fail_named("EMLINK", "chmod", "the file has other hard links, possibly outside the workspace (change its mode by hand, or break the link first)");
  }
  if (syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) != 0) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd); /* the same inode, without fchmodat2 */
    if (errno != ENOSYS || chmod(proc, mode) != 0) fail("chmod");
  }
  close(fd);
  close(dir);
}

/* The absolute directory path, refusing a symlink anywhere in it. */
static int open_abs(const char *path) {
  if (path[0] != '/') { errno = EINVAL; return -1; }
  int slash = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  int fd = slash < 0 ? -1 : open_dir(slash, path + 1, strlen(path + 1), 0);
  if (slash >= 0) close(slash);
  return fd;
}

static void lock_workspace(const char *lock_dir);

static void setup(const char *ws, const char *tree, const char *expect, const char *lock_dir) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
  if (getenv("CLAWPOD_WSAPPLY_WALK")) use_openat2 = 0; /* tests: exercise the fallback */
  if ((root_fd = open_abs(ws)) < 0) fail("open workspace");
  if (strcmp(tree, "-") != 0 && (tree_fd = open_abs(tree)) < 0) fail("open change set");
  struct stat st;
  if (fstat(root_fd, &st) != 0) fail("stat workspace");
  /* The directory the run started from (DEV:INO recorded with its manifest): a different one
   * renamed into its place since, by anyone who can write above it, is never written to. */
  if (expect) {
    unsigned long long dev, ino;
    char tail;
    if (sscanf(expect, "%llu:%llu%c", &dev, &ino, &tail) != 2) fail_with(EINVAL, "bad expected workspace identity");
    if ((unsigned long long)st.st_dev != dev || (unsigned long long)st.st_ino != ino)
      fail_named("ESTALE", "workspace", "it is no longer the directory the run started from (it was replaced; discard the run)");
  }
  owner_uid = st.st_uid;
  owner_gid = st.st_gid;
  switch_ids = geteuid() == 0 && (owner_uid != 0 || owner_gid != 0);
  lock_workspace(lock_dir);
  if (switch_ids && setgroups(1, &owner_gid) != 0) fail("setgroups");
  as_owner();
}

/* All of stdin: plans are paths and modes, never file contents. */
static char *read_plan(size_t *len) {
  size_t cap = 1 << 16;
  char *plan = malloc(cap);
  *len = 0;
  for (;;) {
    if (*len == cap) plan = (cap *= 2) > MAX_PLAN ? NULL : realloc(plan, cap);
    if (!plan) fail_with(E2BIG, "read plan");
    ssize_t n = read(0, plan + *len, cap - *len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("read plan");
    if (n == 0) return plan;
    *len += (size_t)n;
  }
}

static char *cur, *end;

static const char *next_field(void) {
  char *z = cur < end ? memchr(cur, 0, (size_t)(end - cur)) : NULL;
  if (!z) fail_with(EINVAL, "truncated plan");
  const char *f = cur;
  cur = z + 1;
  return f;
}

static mode_t next_mode(void) { return (mode_t)strtoul(next_field(), NULL, 8) & 0777; }

/* One writer at a time: an exclusive lock on the workspace directory for the whole apply. A pod
 * with the workspace writable holds a shared lock on it for its life (the prelude), so neither
 * can start while the other runs; a second apply is refused too. */
static void lock_workspace(const char *lock_dir) {
  /* clawpod's own lock file for this directory (see podinit's lock_writable), taken as root
   * before we act as the owner; without a lock dir, the directory itself. */
  int fd;
  if (lock_dir) {
    struct stat st;
    char p[4096];
    if (fstat(root_fd, &st) != 0) fail("stat workspace");
    if (lock_path(p, sizeof p, lock_dir, &st) != 0) fail_with(ENAMETOOLONG, "lock workspace");
    fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  } else {
    fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  if (fd < 0) fail("open workspace lock");
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) fail_named("EBUSY", "workspace", "a pod has it writable, or another apply is running (wait for it, then apply again)");
    fail("lock workspace");
  }
  /* kept open (locked) until we exit */
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 5) { fprintf(stderr, "usage: clawpod-wsapply WORKSPACE TREE|- [DEV:INO|- [LOCKDIR]] < PLAN\n"); return 2; }
  /* clawpod gone: stop at once, not at the next flush of our output. */
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) return 2;
  setup(argv[1], argv[2], argc >= 4 && strcmp(argv[3], "-") != 0 ? argv[3] : NULL, argc == 5 ? argv[4] : NULL);
  size_t len;
  cur = read_plan(&len);
  end = cur + len;
  if (strcmp(next_field(), "wsapply1") != 0) fail_with(EINVAL, "plan version");
  const char *parents = next_field();
  create_parents = !strcmp(parents, "create-parents");
  if (!create_parents && strcmp(parents, "existing-parents") != 0) fail_with(EINVAL, "plan header");
  while (cur < end) {
    step++;
    bad_len = 0;
    const char *op = next_field(), *rel = next_field();
    if (!strcmp(op, "rm")) do_rm(rel);
    else if (!strcmp(op, "sweep")) do_sweep(rel);
    else if (!strcmp(op, "mkdir")) do_mkdir(rel);
    else if (!strcmp(op, "symlink")) do_symlink(rel);
    else if (!strcmp(op, "write")) do_write(rel, next_mode());
    else if (!strcmp(op, "chmod")) { mode_t m = next_mode(); do_chmod(rel, m, next_field()[0]); }
    else fail_with(EINVAL, "unknown step");
    printf("ok %lu\n", step);
  }
  printf("done %lu\n", step);
  return fflush(stdout) == 0 ? 0 : 1;
}
