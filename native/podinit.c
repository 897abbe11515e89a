/*
 * clawpod-podinit: the privileged prelude and supervisor of one pod.
 *
 * Why a small C program: these steps need system calls Node cannot make (unshare, mount,
 * open_tree/mount_setattr for idmapped mounts, setuid) and they must happen in one process,
 * before bwrap starts, so nothing the pod can touch runs with privilege. Doing them here
 * instead of through unshare+sh+mount+setpriv saves four execs per pod.
 *
 * Steps: enter a private mount namespace (so every mount below dies with the pod: a killed clawpod
 * leaves no mount behind); mount a sized "stage" (the pod's whole writable space: overlay upper,
 * /tmp, home: this is the disk cap; an ext4 image on a loop device as root, else a tmpfs); attach the workspace and extra mounts
 * there, idmapped so the workspace owner's files appear owned by the pod's uid; mount the
 * overlay; fork; the child joins the pod's cgroups, drops to the pod uid and execs bwrap;
 * the parent waits and then
 * harvests the overlay upper dir into a change set on the host disk.
 *
 * Usage: clawpod-podinit [options] -- bwrap ARGS...
 *   --cgroup-procs FILE     the pod (our child, before it execs bwrap) joins FILE (repeatable)
 *   --cgroup-dir DIR        a cgroup v2 group the child is created in (clone3 CLONE_INTO_CGROUP:
 *                           no migration, so no wait for an RCU grace period); falls back to
 *                           writing DIR/cgroup.procs where the kernel refuses
 *   --stage DIR             mountpoint for the stage tmpfs   --stage-size BYTES (never 0: tmpfs
 *                           would take 0 as "no limit")      --stage-inodes N (its inode cap)
 *   --stage-image TEMPLATE  the stage is an unnamed copy of this ext4 image on a loop device
 *                           (native/stage.c) instead of a tmpfs: disk, not memory (privileged)
 *   --userns                unprivileged mode: own user+mount namespace, no uid change
 *   --uid U --gid G         pod uid/gid (privileged mode)
 *   --idmap-owner UID:GID   on-disk owner shown as the pod uid inside idmapped mounts
 *   --workspace MODE:DEV:INO:SRC   MODE is overlay|ro|rw; attached at STAGE/lower (overlay at
 *                           STAGE/ws). DEV:INO is the identity clawpod checked: SRC is opened once
 *                           (O_PATH|O_NOFOLLOW), must still be that object, and is mounted from
 *                           that descriptor, so a path swapped after its check is never mounted
 *   --attach MODE:DEV:INO:SRC      extra mount (MODE ro|rw), attached at STAGE/mnt/N (N from 0)
 *   --harvest DIR           write the change set (tree/, deleted.lst, opaque.lst) to DIR
 *   --status-fd FD          write "key=value" lines about the pod's end to FD
 *   --copy-workspace        copy the workspace instead of an overlay (also the fallback when the
 *                           kernel refuses an unprivileged overlay); the change set is computed
 *                           by comparing the copy with the workspace
 *   --keep-fd FD            a descriptor clawpod hands the pod on purpose (bwrap's seccomp
 *                           program); every other inherited descriptor but 0-2 and the status
 *                           and go fds is closed first thing (repeatable)
 *   --go-fd FD              the pod's command waits for one byte on FD: clawpod prepares the run
 *                           meanwhile; EOF cancels the pod. Needs --gate-fd
 *   --gate-fd FD            FD (a --keep-fd regular file) is bwrap's seccomp program (its
 *                           --seccomp FD). bwrap starts at once and sets the pod up, and the
 *                           program reaches it, through a pipe, only at go (see main); a program
 *                           we cannot gate (unreadable, PIPE_BUF or larger) is refused
 *   --harvest-fd FD         a warm pod (src/pod/warm.ts): its change set's destination is not
 *                           known at start; clawpod writes it to FD when a run takes the pod, and
 *                           it is read once the pod's command has ended (EOF, nothing written:
 *                           no change set, as for a pod retired unused). Replaces --harvest
 *   --cpus LIST             the pod's CPU affinity ("0-1,3"), set before bwrap: what nproc and
 *                           os.availableParallelism() count (the cpu quota is the enforcement)
 *   --ro-bind SRC DEST      bind SRC read-only (nosuid, nodev, recursive as bwrap's binds are) onto
 *                           the existing DEST, in the pod's mount namespace (repeatable): host
 *                           files on mount points of a dir bwrap then binds as a whole (the pod's
 *                           /etc and /sys), three system calls each here where bwrap re-reads the
 *                           whole mount table for every bind it makes
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "changeset.h"
#include "cpulist.h"
#include "fds.h"
#include "lockpath.h"
#include "stage.h"
#include "sweep.h"

#define MAXN 64
static const char *cgroup_files[MAXN];
static int n_cgroups;
static const char *cgroup_dir;
static const char *attach_src[MAXN], *attach_mode[MAXN];
static struct src_id { unsigned long long dev, ino; } attach_id[MAXN], ws_id;
static int n_attach;
static const char *rbind_src[MAXN], *rbind_dest[MAXN];
static int n_rbind;
static const char *stage, *stage_image, *ws_src, *ws_mode, *harvest_dir;
static unsigned long long stage_size, stage_inodes;
static int stage_watch = -1;
static int userns_mode, copy_mode, status_fd = -1, go_fd = -1, harvest_fd = -1;
static char harvest_given[4096];
static int keep_fds[MAXN], n_keep;
static cpu_set_t pod_cpus;
static int has_cpus;
static long pod_uid = -1, pod_gid = -1, owner_uid = -1, owner_gid = -1;
static volatile pid_t child = -1;
#define POD_PTYS "64"

static void die(const char *what, const char *arg) {
  fprintf(stderr, "clawpod: pod set-up failed: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
  exit(125);
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("open", path);
  if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die("write", path);
  close(fd);
}

static void path_join(char *out, size_t n, const char *a, const char *b) {
  if ((size_t)snprintf(out, n, "%s/%s", a, b) >= n) { errno = ENAMETOOLONG; die("path", a); }
}

static void mkdir_owned(const char *path, mode_t mode, long uid, long gid) {
  struct stat st;
  if (mkdir(path, mode) != 0) {
    if (errno != EEXIST) die("mkdir", path);
    /* The disk stage's template holds its dirs already (src/pod/stage.ts STAGE_DIRS): what is
     * right is left alone, so a pod's start dirties (and its syncfs writes back) only what it
     * changed. */
    if (lstat(path, &st) != 0) die("stat", path);
    if (!S_ISDIR(st.st_mode)) { errno = EEXIST; die("mkdir", path); }
    if ((st.st_mode & 07777) == mode && (uid < 0 || (st.st_uid == (uid_t)uid && st.st_gid == (gid_t)gid))) return;
  }
  if (chmod(path, mode) != 0) die("chmod", path);
  if (uid >= 0 && chown(path, (uid_t)uid, (gid_t)gid) != 0) die("chown", path);
}

/* A user namespace mapping the workspace owner (as seen on disk) to the pod uid. An idmapped mount
 * through it shows the owner's files as the pod's own, and stores the pod's new files as the
 * owner's, so the host workspace never gains files owned by a stranger uid. */
static int idmap_userns(long map_uid, long map_gid) {
  int sync_pipe[2];
  if (pipe2(sync_pipe, O_CLOEXEC) != 0) die("pipe", NULL);
  /* Born in its own user namespace (clone3 CLONE_NEWUSER): its maps can be written at once, with
   * no wait for it to unshare (polling for that slept ~10 times a pod on a busy host). */
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = CLONE_NEWUSER;
  args.exit_signal = SIGCHLD;
  pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) die("clone3 (new user namespace)", NULL);
  if (pid == 0) {
    char c;
    close(sync_pipe[1]);
    while (read(sync_pipe[0], &c, 1) < 0 && errno == EINTR) {}
    _exit(0);
  }
  close(sync_pipe[0]);
  char path[64], map[128], nspath[64];
  snprintf(nspath, sizeof nspath, "/proc/%d/ns/user", pid);
  snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
  snprintf(map, sizeof map, "%ld %ld 1\n", map_uid, pod_uid);
  write_file(path, map);
  snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
  snprintf(map, sizeof map, "%ld %ld 1\n", map_gid, pod_gid);
  write_file(path, map);
  int fd = open(nspath, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open", nspath);
  /* EOF ends it; it is reaped with the pod's other children at the end, not waited for here. */
  close(sync_pipe[1]);
  return fd;
}

/* Opens SRC once, without following a final symlink, and checks it is still the object clawpod
 * checked (device and inode): a path swapped for a symlink or another directory after the check
 * is refused here, and everything below works on this descriptor, never on the name again. */
static int open_checked(const char *src, const struct src_id *id, struct stat *st) {
  int fd = open(src, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) die("open", src);
  if (fstat(fd, st) != 0) die("stat", src);
  if ((unsigned long long)st->st_dev != id->dev || (unsigned long long)st->st_ino != id->ino) {
    errno = ESTALE;
    die("refusing to mount (it changed after clawpod checked it; run again)", src);
  }
  return fd;
}

/* A writable attachment is locked shared for the pod's whole life (this process's): `runs apply`
 * takes the same directory exclusively, so a pod never gets a workspace an apply is writing, and
 * an apply never starts while a pod can write it. The descriptor stays open, close-on-exec. */
static const char *lock_dir;

static void lock_writable(const struct stat *st, const char *src) {
  /* The lock is a file of clawpod's own, named by the directory's identity: no pod can reach it,
   * so none can hold off an apply (a lock on the directory itself, any pod that sees it could). */
  char p[4096];
  if (!lock_dir) return;
  if (lock_path(p, sizeof p, lock_dir, st) != 0) { errno = ENAMETOOLONG; die("lock", src); }
  int dir = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (dir < 0) die("open lock for", src);
  if (flock(dir, LOCK_SH | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      fprintf(stderr, "clawpod: %s is being written by clawpod runs apply; wait for it to finish, then run again\n", src);
      exit(125);
    }
    die("lock", src);
  }
}

/* Attach the checked object FD at DEST, from the descriptor (open_tree AT_EMPTY_PATH): idmapped
 * through USERNS_FD when it is >= 0, else a plain bind (recursive in unprivileged mode, where
 * the kernel requires it for trees with locked submounts). */
static void attach(int fd, const char *src, const char *dest, int readonly, int userns_fd) {
  mkdir_owned(dest, 0755, -1, -1);
  unsigned int rec = userns_mode ? AT_RECURSIVE : 0;
  int tree = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | rec);
  if (tree < 0) die("open_tree", src);
  struct mount_attr attr = {0};
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0);
  if (userns_fd >= 0) {
    attr.attr_set |= MOUNT_ATTR_IDMAP;
    attr.userns_fd = (unsigned long long)userns_fd;
  }
  if (mount_setattr(tree, "", AT_EMPTY_PATH | rec, &attr, sizeof attr) != 0) die(userns_fd >= 0 ? "idmapped mount of" : "mount attributes of", src);
  if (move_mount(tree, "", AT_FDCWD, dest, MOVE_MOUNT_F_EMPTY_PATH) != 0) die("move_mount", src);
  close(tree);
}

/* --ro-bind: SRC (clawpod's own or a public host file) onto DEST, read-only. */
/* Binds SRC (with its submounts when RECURSIVE) onto DEST with ATTRS set, and only those: what
 * else the source has (and, in a user namespace, keeps locked) stays as it is. */
static void bind_with(const char *src, const char *dest, unsigned long long attrs, int recursive) {
  unsigned int rec = recursive ? AT_RECURSIVE : 0;
  int tree = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
  if (tree < 0) die("open_tree", src);
  struct mount_attr attr = {0};
  attr.attr_set = attrs;
  if (mount_setattr(tree, "", AT_EMPTY_PATH | rec, &attr, sizeof attr) != 0) die("mount attributes of", src);
  if (move_mount(tree, "", AT_FDCWD, dest, MOVE_MOUNT_F_EMPTY_PATH) != 0) die("move_mount onto", dest);
  close(tree);
}

static void bind_readonly(const char *src, const char *dest) {
  bind_with(src, dest, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 1);
}

static void enter_userns(void) {
  char map[64];
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) die("unshare user+mount namespace", NULL);
  write_file("/proc/self/setgroups", "deny");
  snprintf(map, sizeof map, "%u %u 1\n", uid, uid);
  write_file("/proc/self/uid_map", map);
  snprintf(map, sizeof map, "%u %u 1\n", gid, gid);
  write_file("/proc/self/gid_map", map);
}

/* Before the pod's child is forked, so it shares the namespaces the stage is mounted in. */
static void enter_namespaces(void) {
  if (userns_mode) enter_userns();
  else if (unshare(CLONE_NEWNS) != 0) die("unshare mount namespace", NULL);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("make mounts private", NULL);
}

/* The device nodes every pod has (bwrap's --dev set), bound from the host's /dev. */
static const char *const DEV_NODES[] = { "null", "zero", "full", "random", "urandom", "tty" };
/* Its links, as bwrap's --dev makes them. */
static const char *const DEV_LINKS[][2] = {
  { "stdin", "/proc/self/fd/0" }, { "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" },
  { "fd", "/proc/self/fd" },      { "core", "/proc/kcore" },       { "ptmx", "pts/ptmx" },
};

/* As bwrap binds them (nosuid; noexec too here), onto a plain file made for it. */
static void bind_node(const char *src, const char *dest) {
  /* Never blocks or opens a device, whatever is there (the stage is fresh; a plain file only). */
  int fd = open(dest, O_RDONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) die("create mount point", dest);
  if (!S_ISREG(st.st_mode)) { errno = EEXIST; die("mount point is not a plain file:", dest); }
  close(fd);
  bind_with(src, dest, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0);
}

/* The pod's /dev, built here and bound by bwrap as one tree (--dev-bind, then read-only) instead
 * of bwrap's --dev: that is a tmpfs and a devpts of its own per pod, and six device binds for
 * each of which bwrap re-reads the whole mount table. Same contents: the six nodes, the links,
 * /dev/pts (the pod's own devpts instance), /dev/shm (the stage's), and /dev/console when the
 * pod's stdout is a terminal (so ttyname() works, as bwrap does it). The disk stage's template
 * holds the dir, the mount points and the links already (src/pod/stage.ts). */
static void setup_dev(void) {
  char dev[4096], p[4096], shm[4096];
  path_join(dev, sizeof dev, stage, "dev"); mkdir_owned(dev, 0755, -1, -1);
  for (size_t i = 0; i < sizeof DEV_LINKS / sizeof DEV_LINKS[0]; i++) {
    path_join(p, sizeof p, dev, DEV_LINKS[i][0]);
    if (symlink(DEV_LINKS[i][1], p) != 0) {
      char got[64];
      ssize_t n = errno == EEXIST ? readlink(p, got, sizeof got - 1) : -1;
      if (n < 0 || (got[n] = 0, strcmp(got, DEV_LINKS[i][1]) != 0)) { if (n >= 0) errno = EEXIST; die("symlink", p); }
    }
  }
  for (size_t i = 0; i < sizeof DEV_NODES / sizeof DEV_NODES[0]; i++) {
    char src[64];
    snprintf(src, sizeof src, "/dev/%s", DEV_NODES[i]);
    path_join(p, sizeof p, dev, DEV_NODES[i]);
    bind_node(src, p);
  }
  /* By its name here (the descriptor's own mount is the host namespace's, not this copy). */
  const char *tty = isatty(1) ? ttyname(1) : NULL;
  if (tty && strncmp(tty, "/dev/", 5) == 0) {
    path_join(p, sizeof p, dev, "console");
    bind_node(tty, p);
  }
  path_join(p, sizeof p, dev, "shm"); mkdir_owned(p, 0755, -1, -1);
  path_join(shm, sizeof shm, stage, "shm");
  if (mount(shm, p, NULL, MS_BIND, NULL) != 0) die("bind", shm);
  /* The pod's own ptys, at most POD_PTYS: a devpts instance of bwrap's would have no cap, and
   * every non-host instance draws on one kernel pool (kernel.pty.max less the host's reserve),
   * which one pod could otherwise drain for all the others. */
  path_join(p, sizeof p, dev, "pts"); mkdir_owned(p, 0755, -1, -1);
  if (mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,max=" POD_PTYS) != 0)
    die("mount devpts", p);
}

static void setup_stage(void) {
  char opts[128], p[4096];
  int userns_fd = -1;
  const char *step;
  /* The image was formatted by clawpod to hold stage_size bytes and stage_inodes inodes. */
  if (stage_image) { if ((stage_watch = stage_mount_image(stage_image, stage, &step)) < 0) die(step, stage_image); }
  else {
    /* nr_inodes is independent of size on tmpfs: without it, empty files pass any disk cap. */
    if (stage_inodes) snprintf(opts, sizeof opts, "size=%llu,nr_inodes=%llu,mode=0755", stage_size, stage_inodes);
    else snprintf(opts, sizeof opts, "size=%llu,mode=0755", stage_size);
    if (mount("clawpod-stage", stage, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) die("mount stage tmpfs", stage);
  }
  long u = userns_mode ? -1 : pod_uid, g = userns_mode ? -1 : pod_gid;
  path_join(p, sizeof p, stage, "tmp");  mkdir_owned(p, 01777, -1, -1);
  path_join(p, sizeof p, stage, "home"); mkdir_owned(p, 0700, u, g);
  path_join(p, sizeof p, stage, "mnt");  mkdir_owned(p, 0755, -1, -1);
  /* /dev is read-only in the pod; its /dev/shm is this dir, so shared memory counts as disk. */
  path_join(p, sizeof p, stage, "shm");  mkdir_owned(p, 01777, -1, -1);
  setup_dev();
  /* The workspace is the grant: its owner's files appear as the pod's own (idmapped). */
  if (!userns_mode && owner_uid >= 0 && ws_src) userns_fd = idmap_userns(owner_uid, owner_gid);
  if (ws_src) {
    int overlay = strcmp(ws_mode, "overlay") == 0;
    struct stat st;
    int fd = open_checked(ws_src, &ws_id, &st);
    if (strcmp(ws_mode, "rw") == 0) lock_writable(&st, ws_src);
    path_join(p, sizeof p, stage, "lower");
    attach(fd, ws_src, p, overlay || strcmp(ws_mode, "ro") == 0, userns_fd);
    close(fd);
    if (overlay) {
      char upper[4096], work[4096], merged[4096], lower[4096];
      snprintf(lower, sizeof lower, "%s", p);
      path_join(upper, sizeof upper, stage, "upper");  mkdir_owned(upper, 0755, u, g);
      path_join(work, sizeof work, stage, "work");     mkdir_owned(work, 0700, -1, -1);
      path_join(merged, sizeof merged, stage, "ws");   mkdir_owned(merged, 0755, -1, -1);
      char ovl[16384];
      /* No redirects, metacopy or index: the upper dir then holds whole files and plain
       * whiteouts, so it is exactly the change set. userxattr implies redirect_dir=nofollow. */
      snprintf(ovl, sizeof ovl, "lowerdir=%s,upperdir=%s,workdir=%s,%s,metacopy=off,index=off,xino=off",
               lower, upper, work, userns_mode ? "userxattr" : "redirect_dir=off");
      if (copy_mode || mount("overlay", merged, "overlay", MS_NOSUID | MS_NODEV, ovl) != 0) {
        /* Only an unprivileged pod may fall back: as root an overlay failure is a real fault. */
        if (!copy_mode && !userns_mode) die("mount overlay on", ws_src);
        copy_mode = 1;
        copy_workspace(lower, merged);
      }
    }
  }
  if (userns_fd >= 0) close(userns_fd);
  for (int i = 0; i < n_rbind; i++) bind_readonly(rbind_src[i], rbind_dest[i]);
  for (int i = 0; i < n_attach; i++) {
    char name[32];
    struct stat st;
    int rw = strcmp(attach_mode[i], "rw") == 0;
    int fd = open_checked(attach_src[i], &attach_id[i], &st);
    if (rw) lock_writable(&st, attach_src[i]);
    snprintf(name, sizeof name, "mnt/%d", i);
    path_join(p, sizeof p, stage, name);
    /* A read-only extra mount is not idmapped: the pod reads what any other local user could,
     * never the owner's 0600 files. A writable one maps its own root's owner (not the
     * workspace's), so the pod writes there as that owner and gains nothing else. */
    int ns = rw && !userns_mode ? idmap_userns((long)st.st_uid, (long)st.st_gid) : -1;
    attach(fd, attach_src[i], p, !rw, ns);
    if (ns >= 0) close(ns);
    close(fd);
  }
}

/* The disk cap is the kernel's refusal (ENOSPC), not a kill: say which cap it was. */
static void tell_disk_full(int full) {
  unsigned long long v = stage_size;
  const char *unit = v % (1ULL << 30) == 0 ? "Gi" : v % (1ULL << 20) == 0 ? "Mi" : "";
  v = unit[0] == 'G' ? v >> 30 : unit[0] == 'M' ? v >> 20 : v;
  if (full == STAGE_FULL_INODES)
    fprintf(stderr, "clawpod: the pod's disk ran out of inodes (resources.disk: %llu%s sets how many files it holds): "
            "its file creations failed with No space left on device; raise resources.disk in the policy\n", v, unit);
  else
    fprintf(stderr, "clawpod: the pod's disk was full (resources.disk: %llu%s): its writes failed with No space left on device; "
            "raise resources.disk in the policy\n", v, unit);
}

/* fork(), or on cgroup v2 clone3 straight into the pod's group. Returns 0 in the child. */
static pid_t spawn_child(void) {
  if (cgroup_dir) {
    int cfd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cfd >= 0) {
      struct clone_args args;
      memset(&args, 0, sizeof args);
      args.flags = CLONE_INTO_CGROUP;
      args.exit_signal = SIGCHLD;
      args.cgroup = (unsigned long long)cfd;
      long pid = syscall(SYS_clone3, &args, sizeof args);
      if (pid >= 0) {
        if (pid > 0) close(cfd);
        return (pid_t)pid;
      }
      close(cfd);
    }
    /* Old kernel or a group the kernel will not clone into: join it the ordinary way. */
    if (n_cgroups < MAXN) {
      static char procs[4096];
      snprintf(procs, sizeof procs, "%s/cgroup.procs", cgroup_dir);
      cgroup_files[n_cgroups++] = procs;
    }
  }
  pid_t pid = fork();
  if (pid < 0) die("fork", NULL);
  return pid;
}

static pid_t clawpod_pid;

static int gate_fd = -1;
static volatile sig_atomic_t stop_requested;

/* The whole program from fd (a regular file, read by offset: the fd is left as it was), its
 * length, or -1 when it is larger than buf (or unreadable): the gate is then not used. */
static ssize_t read_program(int fd, char *buf, size_t size) {
  size_t got = 0;
  for (;;) {
    ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) return (ssize_t)got;
    got += (size_t)n;
    if (got == size) return -1;
  }
}

/* A warm pod's change set destination, as clawpod wrote it to --harvest-fd (up to EOF), or NULL:
 * nothing written (retired unused, stopped before it ran), clawpod gone (SIGTERM), or not an
 * absolute path. */
static const char *read_harvest_dir(void) {
  size_t got = 0;
  for (;;) {
    ssize_t n = read(harvest_fd, harvest_given + got, sizeof harvest_given - 1 - got);
    if (n < 0 && errno == EINTR && !harvest_abandoned) continue;
    if (n < 0) return NULL;
    if (n == 0) break;
    got += (size_t)n;
    if (got == sizeof harvest_given - 1) { fprintf(stderr, "clawpod: the change set's destination is too long\n"); return NULL; }
  }
  close(harvest_fd);
  harvest_given[got] = 0;
  if (got == 0) return NULL;
  if (harvest_given[0] != '/' || strlen(harvest_given) != got) { fprintf(stderr, "clawpod: refusing a change set destination that is not an absolute path\n"); return NULL; }
  return harvest_given;
}

static void forward_signal(int sig) {
  (void)sig;
  stop_requested = 1;
  /* Any stop request kills the pod outright: bwrap's --die-with-parent then takes down
   * the pod's pid namespace, and with it every process in it. */
  if (child > 0) kill(child, SIGKILL);
  /* SIGTERM is also what we get when clawpod dies (PDEATHSIG): then nobody will read a change
   * set, and copying one would leave up to the disk cap behind as residue. */
  if (getppid() != clawpod_pid) harvest_abandoned = 1;
}

static unsigned long long parse_count(const char *opt, const char *v) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno || end == v || *end || v[0] == '-') { fprintf(stderr, "clawpod-podinit: bad %s %s\n", opt, v); exit(125); }
  return n;
}

/* MODE:DEV:INO:SRC (SRC last: it may itself hold colons). */
static void parse_source(const char *opt, char *v, const char **mode, struct src_id *id, const char **src) {
  char *a = strchr(v, ':'), *b = a ? strchr(a + 1, ':') : NULL, *c = b ? strchr(b + 1, ':') : NULL;
  if (!c || c[1] != '/') { fprintf(stderr, "clawpod-podinit: bad %s %s\n", opt, v); exit(125); }
  *a = *b = *c = 0;
  *mode = v;
  id->dev = parse_count(opt, a + 1);
  id->ino = parse_count(opt, b + 1);
  *src = c + 1;
}

/* "0-1,3" into pod_cpus; anything else (or an empty set) is refused. */
static void parse_cpus(const char *v) {
  if (cpulist_parse(v, &pod_cpus) == 0) { has_cpus = 1; return; }
  fprintf(stderr, "clawpod-podinit: bad --cpus %s\n", v);
  exit(125);
}

static void parse_args(int argc, char **argv, int *cmd_start) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "--userns") == 0) { userns_mode = 1; continue; }
    if (strcmp(a, "--copy-workspace") == 0) { copy_mode = 1; continue; }
    if (strcmp(a, "--ro-bind") == 0) {
      if (i + 2 >= argc || n_rbind >= MAXN) { fprintf(stderr, "clawpod-podinit: --ro-bind needs SRC DEST\n"); exit(125); }
      rbind_src[n_rbind] = argv[++i];
      rbind_dest[n_rbind++] = argv[++i];
      continue;
    }
    if (!v) { fprintf(stderr, "clawpod-podinit: %s needs a value\n", a); exit(125); }
    i++;
    if (strcmp(a, "--cgroup-procs") == 0 && n_cgroups < MAXN) cgroup_files[n_cgroups++] = v;
    else if (strcmp(a, "--cgroup-dir") == 0) cgroup_dir = v;
    else if (strcmp(a, "--cpus") == 0) parse_cpus(v);
    else if (strcmp(a, "--stage") == 0) stage = v;
    else if (strcmp(a, "--stage-size") == 0) stage_size = parse_count(a, v);
    else if (strcmp(a, "--stage-inodes") == 0) stage_inodes = parse_count(a, v);
    else if (strcmp(a, "--stage-image") == 0) stage_image = v;
    else if (strcmp(a, "--uid") == 0) pod_uid = strtol(v, NULL, 10);
    else if (strcmp(a, "--gid") == 0) pod_gid = strtol(v, NULL, 10);
    else if (strcmp(a, "--idmap-owner") == 0) sscanf(v, "%ld:%ld", &owner_uid, &owner_gid);
    else if (strcmp(a, "--harvest") == 0) harvest_dir = v;
    else if (strcmp(a, "--lock-dir") == 0) lock_dir = v;
    else if (strcmp(a, "--status-fd") == 0) status_fd = (int)parse_count(a, v);
    else if (strcmp(a, "--go-fd") == 0) go_fd = (int)parse_count(a, v);
    else if (strcmp(a, "--gate-fd") == 0) gate_fd = (int)parse_count(a, v);
    else if (strcmp(a, "--harvest-fd") == 0) harvest_fd = (int)parse_count(a, v);
    else if (strcmp(a, "--keep-fd") == 0 && n_keep < MAXN) keep_fds[n_keep++] = (int)parse_count(a, v);
    else if (strcmp(a, "--workspace") == 0) parse_source(a, argv[i], &ws_mode, &ws_id, &ws_src);
    else if (strcmp(a, "--attach") == 0 && n_attach < MAXN) {
      parse_source(a, argv[i], &attach_mode[n_attach], &attach_id[n_attach], &attach_src[n_attach]);
      n_attach++;
    } else { fprintf(stderr, "clawpod-podinit: unknown option %s\n", a); exit(125); }
  }
  /* tmpfs reads size=0 as "unlimited": a zero stage would be a pod without a disk cap. */
  if (stage_size == 0) { fprintf(stderr, "clawpod-podinit: refusing a stage size of 0 (no disk cap)\n"); exit(125); }
  if (i >= argc || !stage) { fprintf(stderr, "clawpod-podinit: usage: [options] --stage DIR -- bwrap ...\n"); exit(125); }
  if (stage_image && userns_mode) { fprintf(stderr, "clawpod-podinit: --stage-image needs privileged mode\n"); exit(125); }
  if (!userns_mode && (pod_uid <= 0 || pod_gid <= 0)) { fprintf(stderr, "clawpod-podinit: refusing to run a pod as root\n"); exit(125); }
  *cmd_start = i;
}

/* Every disposition back to the default, the C library's own signals (32, 33) too: glibc's
 * posix_spawn, which clawpod starts us with (native/spawn.c), leaves those two ignored, and an
 * ignored signal would stay ignored through bwrap into the pod. The raw call, because glibc's
 * sigaction refuses its internal signals. */
static void reset_signals(void) {
  struct {
    void *handler;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
  } dfl = {SIG_DFL, 0, NULL, 0};
  for (int sig = 1; sig <= 64; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
}

int main(int argc, char **argv) {
  int cmd_start;
  reset_signals();
  parse_args(argc, argv, &cmd_start);
  sanitize_stdio();
  int keep[MAXN + 3], nk = 0;
  for (int i = 0; i < n_keep; i++) keep[nk++] = keep_fds[i];
  if (status_fd >= 0) keep[nk++] = status_fd;
  if (go_fd >= 0) keep[nk++] = go_fd;
  if (harvest_fd >= 0) keep[nk++] = harvest_fd;
  close_inherited(keep, nk);
  pid_t parent = getppid();
  clawpod_pid = parent;
  /* clawpod gone: SIGTERM, handled below by killing the pod and reaping it before we exit. */
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) die("prctl", NULL);
  /* Orphaned pod processes (bwrap's pid-1 child when bwrap dies first) come back to us to be
   * reaped, instead of lingering as zombies under the host's init. */
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) die("prctl", NULL);
  if (getppid() != parent) exit(125);
  if (status_fd >= 0) fcntl(status_fd, F_SETFD, FD_CLOEXEC);
  if (go_fd >= 0) fcntl(go_fd, F_SETFD, FD_CLOEXEC);
  if (harvest_fd >= 0) fcntl(harvest_fd, F_SETFD, FD_CLOEXEC);
  enter_namespaces();
  /* The child is forked before the stage is mounted: its cgroup join (a migration that can wait
   * for an RCU grace period on cgroup v1) then overlaps the mounting, and it starts bwrap only
   * once the stage is ready (one byte on this pipe; EOF means set-up failed). */
  /* The gate (--go-fd): bwrap reads its seccomp program from a kept fd after its whole set-up
   * (namespaces, binds, pivot_root), as the last step before it execs the command. That fd
   * becomes a pipe we fill only at go, so bwrap sets the pod up while clawpod records the run
   * and waits, holding nothing of the command, on the program. A pod whose go never comes
   * (EOF: cancelled, clawpod gone) is killed and its pipe closed empty; bwrap refuses an empty
   * or partial program too (EINVAL; not a multiple of 8), so it never runs the command without
   * its filter. The program is written in one write of at most PIPE_BUF bytes: all or nothing. */
  static char program[PIPE_BUF];
  ssize_t program_len = -1;
  int gate = -1;
  if (go_fd >= 0 && gate_fd < 0) { fprintf(stderr, "clawpod-podinit: --go-fd needs --gate-fd (the pod waits for go at bwrap's seccomp program)\n"); exit(125); }
  if (gate_fd >= 0) {
    int kept = 0;
    for (int k = 0; k < n_keep; k++) kept |= keep_fds[k] == gate_fd;
    if (go_fd < 0 || !kept) { fprintf(stderr, "clawpod-podinit: --gate-fd needs --go-fd and a --keep-fd of the same fd\n"); exit(125); }
    program_len = read_program(gate_fd, program, sizeof program);
    if (program_len <= 0) { fprintf(stderr, "clawpod-podinit: cannot gate the pod's seccomp program (unreadable, empty, or %d bytes or more)\n", PIPE_BUF); exit(125); }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) die("pipe", NULL);
    if (dup2(p[0], gate_fd) < 0) die("dup2", NULL); /* bwrap's fd: not close-on-exec */
    close(p[0]);
    gate = p[1];
  }
  int staged[2];
  if (pipe2(staged, O_CLOEXEC) != 0) die("pipe", NULL);
  child = spawn_child();
  if (child == 0) {
    /* Only the pod joins its cgroups: the child, before exec, so bwrap and everything it forks
     * is charged from the start, while this supervisor stays outside (no second migration to
     * leave them, and killing the groups spares it to save the change set). */
    close(staged[1]);
    /* Inherited by bwrap and the whole pod: runtimes that count CPUs by affinity see the cap.
     * First thing: moving off a CPU the pod may not use waits for the migration (and, on a busy
     * host, for a turn on the new CPU: measured ~6 ms a pod under load when it came last), and
     * here that wait overlaps the parent's mounting of the stage. */
    if (has_cpus && sched_setaffinity(0, sizeof pod_cpus, &pod_cpus) != 0) die("sched_setaffinity", NULL);
    for (int i = 0; i < n_cgroups; i++) {
      char pid[32];
      snprintf(pid, sizeof pid, "%d\n", getpid());
      write_file(cgroup_files[i], pid);
    }
    char ready;
    ssize_t got;
    while ((got = read(staged[0], &ready, 1)) < 0 && errno == EINTR) {}
    if (got != 1) _exit(125);
    close(staged[0]);
    if (!userns_mode) {
      /* The host's /sys (a dozen cgroup and tracing mounts here) and its mounts under /dev leave
       * this mount namespace: the pod's /sys is the skeleton and its /dev the stage's, both bound
       * above, and bwrap re-reads the whole mount table at every bind it makes, copies it for its
       * own namespace and tears it down. The joins above are done and the parent is past every
       * use of them. Each one stacked there goes; a host without one is fine. As root only: in a
       * user namespace the inherited mounts are locked to their parents. */
      static const char *const host_mounts[] = { "/sys", "/dev/shm", "/dev/pts", "/dev/mqueue", "/dev/hugepages" };
      for (size_t i = 0; i < sizeof host_mounts / sizeof host_mounts[0]; i++)
        for (int n = 0; n < 16 && umount2(host_mounts[i], MNT_DETACH | UMOUNT_NOFOLLOW) == 0; n++) {}
      if (setgroups(0, NULL) != 0) die("setgroups", NULL);
      if (setresgid((gid_t)pod_gid, (gid_t)pod_gid, (gid_t)pod_gid) != 0) die("setgid", NULL);
      if (setresuid((uid_t)pod_uid, (uid_t)pod_uid, (uid_t)pod_uid) != 0) die("setuid", NULL);
    }
    /* bwrap's own --die-with-parent ties it to us from here on. */
    execv(argv[cmd_start], argv + cmd_start);
    fprintf(stderr, "clawpod: cannot start %s: %s (install bubblewrap: apt-get install bubblewrap)\n",
            argv[cmd_start], strerror(errno));
    _exit(125);
  }
  close(staged[0]);
  /* The read end is the pod's (bwrap's seccomp fd); ours would keep the gate from ever failing. */
  if (gate >= 0) close(gate_fd);
  /* Only here, after the fork: an ignored SIGPIPE would be inherited by the pod's commands. */
  signal(SIGPIPE, SIG_IGN);
  setup_stage();
  refuse_setid_programs(stage, ws_mode, ws_src, n_attach, attach_mode, attach_src);
  if (write(staged[1], "s", 1) != 1) die("signal the pod", NULL);
  close(staged[1]);
  if (status_fd >= 0 && write(status_fd, "started=1\n", 10) < 0) {}
  /* While the pod starts and runs: its end's syncfs then waits for what the pod wrote alone. */
  stage_start_writeback(stage_watch);
  struct sigaction sa = {0};
  sa.sa_handler = forward_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  int cancelled = 0;
  if (gate >= 0) {
    char go;
    ssize_t n;
    /* A stop (SIGTERM: clawpod's stop, or its death) cancels, whatever comes on go_fd after. */
    while ((n = read(go_fd, &go, 1)) < 0 && errno == EINTR && !stop_requested) {}
    if (n == 1 && !stop_requested && write(gate, program, (size_t)program_len) == program_len) {
      /* the pod runs: its seccomp program is all there */
    } else {
      /* Killed before its pipe closes: bwrap never even sees the empty program. */
      if (child > 0) kill(child, SIGKILL);
      cancelled = 1;
    }
    close(gate);
  }
  if (go_fd >= 0) close(go_fd);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
  /* Cancelled before go: as the pod that waited before bwrap did (it exited 125). */
  if (cancelled) status = 125 << 8;
  /* Reaped: its pid may be anyone's now, so a late stop signal must not kill it (as root). */
  child = -1;
  /* The pod's command is over: from here clawpod must not stop us (a timeout or an interrupt
   * that comes during the harvest would otherwise throw the pod's finished work away). */
  if (status_fd >= 0) {
    /* With the command's status: what clawpod can say of the run before the harvest is done. */
    char line[64];
    int n = snprintf(line, sizeof line, "exited=1\nexit_code=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    if (write(status_fd, line, (size_t)n) < 0) {}
  }
  /* The pod's pid namespace dies with bwrap; reap whatever of it was handed to us. */
  while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
  /* Nothing of the pod is left to race it: clear the set-id bits it left on rw attachments. */
  sweep_rw_attachments(stage, ws_mode, n_attach, attach_mode, status_fd);
  if (harvest_fd >= 0) harvest_dir = read_harvest_dir();
  /* Before the harvest reads the stage: every page it reads is then what the pod wrote. */
  int lost = stage_writeback_failed(stage_watch);
  int harvest = harvest_dir && ws_mode && strcmp(ws_mode, "overlay") == 0;
  struct statfs sf;
  int stat_ok = statfs(stage, &sf) == 0;
  if (status_fd >= 0) {
    char line[128];
    int full = stat_ok ? stage_is_full(&sf) : 0;
    if (full) tell_disk_full(full);
    int n = snprintf(line, sizeof line, "stage_full=%d\nstage_full_what=%s\nws_copy=%d\n", full != 0,
                     full == STAGE_FULL_INODES ? "inodes" : "bytes", copy_mode);
    if (write(status_fd, line, (size_t)n) < 0) {}
  }
  if (lost) stage_tell_writeback_failed(lost, stage_image, stage_size + (64ULL << 20), harvest, status_fd);
  else if (harvest) {
    /* Whatever the harvest meets, the pod's own status is what we exit with: a change set
     * that cannot be kept whole is dropped and reported, never the run's result with it. The
     * entry cap is the stage's real inode count when larger (mke2fs rounds the asked count
     * up): whatever the pod could create fits. */
    unsigned long long inodes = stage_image && stat_ok && sf.f_files > stage_inodes ? sf.f_files : stage_inodes;
    struct harvest_caps caps = { stage_size, inodes, ws_src ? strlen(ws_src) : 0 };
    struct harvest_report rep;
    harvest_changes(stage, harvest_dir, copy_mode, userns_mode, &caps, &rep);
    harvest_tell(&rep, status_fd);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}
