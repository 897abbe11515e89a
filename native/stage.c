/*
 * The pod's stage on disk (privileged mode). A tmpfs stage is memory: every byte a pod writes
 * to /tmp or its overlay is charged to its memory cgroup and can never be reclaimed, so a pod
 * meets its memory cap long before its disk cap. Here the stage is an ext4 filesystem in an
 * unnamed file (O_TMPFILE) beside clawpod's template image, on a loop device: ENOSPC comes at
 * the disk cap, and the page cache over it is reclaimable like any file's.
 *
 * Nothing outlives the pod, however it ends: the image never has a name; the loop device is
 * attached with autoclear, so it detaches itself when the last opener (the mount) goes; the
 * mount lives only in the prelude's private mount namespace, which dies with the pod. When the
 * loop device lets go of the file, the file's blocks are freed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "stage.h"

#ifndef LOOP_CONFIGURE
#define LOOP_CONFIGURE 0x4C0A
#endif
#define EXT4_SUPER_MAGIC 0xEF53
/* As src/pod/stage.ts BLOCK: the template's ext4 block size. */
#define STAGE_BLOCK 4096

/* The primary superblock (at 1024 in the image) and the fields a fresh UUID touches. */
#define SB_AT 1024
#define SB_INCOMPAT 0x60
#define SB_RO_COMPAT 0x64
#define SB_UUID 0x68
#define SB_CHECKSUM 0x3FC
#define RO_COMPAT_METADATA_CSUM 0x400
#define INCOMPAT_CSUM_SEED 0x2000

/* How often a free loop device is asked for again when a concurrent pod took it first. */
#define LOOP_TRIES 64

static int fail(const char **what, const char *step, int fds[], int n) {
  int e = errno;
  for (int i = 0; i < n; i++) if (fds[i] >= 0) close(fds[i]);
  *what = step;
  errno = e;
  return -1;
}

/* Only a template clawpod (root) made and nobody else can change is copied into a pod's stage. */
static int root_only(int fd, int want_dir) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -1;
  if (st.st_uid != 0 || (st.st_mode & 022) || (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))) {
    errno = EPERM;
    return -1;
  }
  return 0;
}

/* Writes the template's data extents (a fresh ext4 image is almost all holes) through the loop
 * device itself, so they land in its page cache: the mount and the pod's first lookups and
 * allocations (superblock, group descriptors, bitmaps, the stage's inodes and dirs) then find
 * every block there, where each would otherwise be a synchronous read through the loop's worker
 * (a wait for its turn on a CPU, long on a busy host). syncfs before the harvest writes them back
 * to the image file with what the pod wrote. Holes stay holes: the image file reads as zeros
 * there, as the template does. Written through the device, nothing it cached before (a probe's
 * read) can go stale, so it needs no flush either. */
static int copy_sparse(int from, int to) {
  off_t off = 0;
  for (;;) {
    off_t data = lseek(from, off, SEEK_DATA);
    if (data < 0) { if (errno == ENXIO) break; return -1; }
    off_t hole = lseek(from, data, SEEK_HOLE);
    if (hole < 0 || lseek(to, data, SEEK_SET) != data) return -1;
    /* In the kernel (no buffer of the prelude's own: it would count in every pod's memory). */
    for (off_t in = data; in < hole;) {
      ssize_t n = sendfile(to, from, &in, (size_t)(hole - in));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) { if (n == 0) errno = EIO; return -1; }
    }
    off = hole;
  }
  return 0;
}

static unsigned int le32(const unsigned char *p) {
  return (unsigned int)p[0] | (unsigned int)p[1] << 8 | (unsigned int)p[2] << 16 | (unsigned int)p[3] << 24;
}

/* crc32c as ext4 checksums its superblock: seed ~0, no final inversion. */
static unsigned int crc32c(unsigned int crc, const unsigned char *p, size_t n) {
  while (n--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78U & (0U - (crc & 1)));
  }
  return crc;
}

/* Gives the copy its own UUID: every pod's image would otherwise carry the template's, and a
 * host running udev names block devices by it (/dev/disk/by-uuid), one link for all the pods.
 * Only the superblock changes: the template is formatted with metadata_csum_seed, so the other
 * metadata checksums do not depend on the UUID. A template without it keeps its UUID. */
static int fresh_uuid(int image) {
  unsigned char sb[1024];
  if (pread(image, sb, sizeof sb, SB_AT) != (ssize_t)sizeof sb) { if (errno == 0) errno = EIO; return -1; }
  if ((le32(sb + SB_RO_COMPAT) & RO_COMPAT_METADATA_CSUM) && !(le32(sb + SB_INCOMPAT) & INCOMPAT_CSUM_SEED)) return 0;
  if (getrandom(sb + SB_UUID, 16, 0) != 16) return -1;
  sb[SB_UUID + 6] = (unsigned char)((sb[SB_UUID + 6] & 0x0F) | 0x40); /* version 4 */
  sb[SB_UUID + 8] = (unsigned char)((sb[SB_UUID + 8] & 0x3F) | 0x80); /* RFC 4122 variant */
  if (le32(sb + SB_RO_COMPAT) & RO_COMPAT_METADATA_CSUM) {
    unsigned int c = crc32c(~0U, sb, SB_CHECKSUM);
    for (int i = 0; i < 4; i++) sb[SB_CHECKSUM + i] = (unsigned char)(c >> (8 * i));
  }
  return pwrite(image, sb, sizeof sb, SB_AT) == (ssize_t)sizeof sb ? 0 : -1;
}

/* Attaches IMAGE to a free loop device with autoclear; returns its descriptor, *n its number.
 * Pods race for the same free device: the loser of LOOP_CONFIGURE gets EBUSY and asks again. */
static int attach_loop(int image, int *n) {
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) return -1;
  for (int t = 0; t < LOOP_TRIES; t++) {
    int num = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (num < 0) break;
    char dev[32];
    snprintf(dev, sizeof dev, "/dev/loop%d", num);
    int fd = open(dev, O_RDWR | O_CLOEXEC);
    if (fd < 0) { if (errno == ENOENT || errno == ENXIO) continue; break; }
    struct loop_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.fd = (unsigned int)image;
    /* Buffered, not LO_FLAGS_DIRECT_IO: direct I/O drops the second copy of the stage's pages
     * in the host's page cache (measured: 200 MiB written, +283 MiB cached instead of +440 to
     * 480), but it forces the copied template to the disk on the first read (pod start p50
     * +1.5 to 3 ms, p90 +6) and every write-back to the real disk, where a buffered short pod's
     * stage never reaches it. */
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    /* The image's own block size: ext4 then never changes the device's block size at mount
     * (each change flushes every CPU's buffer-head cache with an IPI, twice per mount). */
    cfg.block_size = STAGE_BLOCK;
    snprintf((char *)cfg.info.lo_file_name, sizeof cfg.info.lo_file_name, "clawpod-stage");
    if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) { close(ctl); *n = num; return fd; }
    int e = errno;
    close(fd);
    errno = e;
    if (e != EBUSY) break;
  }
  int e = errno ? errno : EBUSY;
  close(ctl);
  errno = e;
  return -1;
}

int stage_mount_image(const char *template_path, const char *stage, const char **what) {
  char dir[4096];
  const char *slash = strrchr(template_path, '/');
  if (!slash || slash == template_path || (size_t)(slash - template_path) >= sizeof dir) {
    errno = EINVAL;
    *what = "stage image path";
    return -1;
  }
  memcpy(dir, template_path, (size_t)(slash - template_path));
  dir[slash - template_path] = 0;
  int fds[4] = { -1, -1, -1, -1 }; /* dir, template, image, loop */
  if ((fds[0] = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 || root_only(fds[0], 1) != 0)
    return fail(what, "open stage image directory", fds, 4);
  if ((fds[1] = openat(fds[0], slash + 1, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || root_only(fds[1], 0) != 0)
    return fail(what, "open stage template", fds, 4);
  /* Unnamed from the start: a prelude killed at any point leaves no file behind. */
  if ((fds[2] = openat(fds[0], ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0)
    return fail(what, "create stage image", fds, 4);
  struct stat st;
  if (fstat(fds[1], &st) != 0 || ftruncate(fds[2], st.st_size) != 0) return fail(what, "size stage image", fds, 4);
  /* Attached while still empty: LOOP_CONFIGURE fsyncs its file, which would give the copy below
   * blocks on the host disk (and freeing blocks can mean a synchronous discard per extent at
   * the pod's end). The copy stays in the page cache: a short pod's stage never reaches the
   * disk. (That fsync still writes the new file's inode and flushes the host disk once a pod:
   * LOOP_CONFIGURE always syncs its file.) */
  int num;
  if ((fds[3] = attach_loop(fds[2], &num)) < 0) return fail(what, "attach stage image to a loop device", fds, 4);
  if (copy_sparse(fds[1], fds[3]) != 0) return fail(what, "copy stage template", fds, 4);
  if (fresh_uuid(fds[3]) != 0) return fail(what, "give the stage image its own UUID", fds, 4);
  char dev[32];
  snprintf(dev, sizeof dev, "/dev/loop%d", num);
  /* No barriers: the data is thrown away with the pod, so nothing is ever worth a flush. The
   * template's inode tables were never zeroed (lazy_itable_init): they are holes, which read as
   * zeros, so the kernel must not zero them either (noinit_itable). Nor read ahead every group's
   * block bitmap in the background at mount (no_prefetch_block_bitmaps): with both off no
   * ext4lazyinit work is queued for the pod at all (its wall time did not change measurably).
   * Silent: ext4 would log two lines per pod (mounted, unmounting) in the host's kernel log. */
  if (mount(dev, stage, "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME | MS_SILENT, "nobarrier,noinit_itable,no_prefetch_block_bitmaps") != 0 &&
      (errno != EINVAL || mount(dev, stage, "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME | MS_SILENT, "nobarrier,noinit_itable") != 0))
    return fail(what, "mount stage image", fds, 4); /* (a kernel before 5.9 knows no no_prefetch_block_bitmaps) */
  /* mballoc's first allocation (the overlay's work dir) would otherwise read ahead the bitmaps
   * of every group, and initialize each never-used one: ~0.3 ms of CPU a pod (a flex group's
   * inode tables walked block by block) for groups a short pod never allocates in. Groups are
   * still read as the allocator reaches them. Best effort: a kernel without the knob prefetches. */
  char knob[64];
  snprintf(knob, sizeof knob, "/sys/fs/ext4/loop%d/mb_prefetch", num);
  int kfd = open(knob, O_WRONLY | O_CLOEXEC);
  if (kfd >= 0) {
    if (write(kfd, "0", 1) != 1) {}
    close(kfd);
  }
  for (int i = 0; i < 4; i++) close(fds[i]);
  /* Opened right after the mount: syncfs on it reports every writeback error since (see
   * stage_writeback_failed). */
  int watch = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (watch < 0) { *what = "open the mounted stage"; return -1; }
  return watch;
}

void stage_start_writeback(int watch) {
  struct stat st, dev;
  if (watch < 0 || fstat(watch, &st) != 0) return;
  char path[32];
  snprintf(path, sizeof path, "/dev/loop%u", minor(st.st_dev));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  /* Only the very device the stage is mounted from. */
  if (fstat(fd, &dev) == 0 && S_ISBLK(dev.st_mode) && dev.st_rdev == st.st_dev) sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  close(fd);
}

int stage_writeback_failed(int watch) {
  return watch >= 0 && syncfs(watch) != 0 ? errno : 0;
}

void stage_tell_writeback_failed(int err, const char *template_path, unsigned long long room, int changes, int status_fd) {
  char dir[4096];
  const char *slash = strrchr(template_path, '/');
  int n = slash ? (int)(slash - template_path) : (int)strlen(template_path);
  snprintf(dir, sizeof dir, "%.*s", n, template_path);
  /* A loop write the host refused for want of room reaches the stage as EIO: room is what
   * tells the two apart (a concurrent pod may have freed some since; then EIO is named). */
  char why[160];
  struct statfs host;
  int short_of_room = statfs(dir, &host) == 0 && (unsigned long long)host.f_bavail * (unsigned long long)host.f_bsize < room;
  if (err == ENOSPC || (err == EIO && short_of_room)) snprintf(why, sizeof why, "the host's disk filled up during the pod");
  else snprintf(why, sizeof why, "the host could not write the pod's disk back (%s; was its disk full?)", strerror(err));
  /* Not the pod's disk cap: its own writes succeeded; the host could not keep them. */
  if (changes)
    fprintf(stderr, "clawpod: the pod's workspace changes were discarded: %s, so what it wrote was not kept whole; "
            "free disk space under %s, then run again\n", why, dir);
  else
    fprintf(stderr, "clawpod: %s: what the pod wrote to its disk may have read back as zeros; free disk space under %s, "
            "then run again\n", why, dir);
  if (status_fd < 0) return;
  char line[512];
  int len = snprintf(line, sizeof line, "host_disk=%d\n%s", err,
                     changes ? "harvest=host_disk\nharvest_detail=" : "");
  if (changes) len += snprintf(line + len, sizeof line - (size_t)len, "%s\n", why);
  if (write(status_fd, line, (size_t)len) < 0) {}
}

int stage_is_full(const struct statfs *sf) {
  unsigned long long bsize = (unsigned long long)sf->f_bsize;
  if (sf->f_files > 0 && sf->f_ffree == 0) return STAGE_FULL_INODES;
  if (sf->f_type != EXT4_SUPER_MAGIC) return sf->f_bavail == 0 ? STAGE_FULL_BYTES : 0;
  unsigned long long slack = (unsigned long long)sf->f_blocks * bsize / 1000;
  if (slack < STAGE_FULL_SLACK) slack = STAGE_FULL_SLACK;
  return (unsigned long long)sf->f_bavail * bsize < slack ? STAGE_FULL_BYTES : 0;
}
