/* The pod's stage on disk: a private copy of an ext4 template image on a loop device. */
#ifndef CLAWPOD_STAGE_H
#define CLAWPOD_STAGE_H
#include <sys/statfs.h>

/* Mounts an unnamed copy of TEMPLATE (a root-owned ext4 image clawpod formatted, given a UUID
 * of its own) at STAGE. Returns a descriptor of the mounted stage (close-on-exec, for
 * stage_writeback_failed), or -1 with errno set and *what naming the step that failed. Every
 * other descriptor it opened is closed on return: the mount alone keeps the loop device
 * (autoclear) and with it the unnamed image alive, so both go with the last mount namespace
 * holding the stage. */
int stage_mount_image(const char *template_path, const char *stage, const char **what);

/* Starts writing the stage's dirty blocks (the template's, written through the loop device, and
 * the set-up's) back to the image file, without waiting: once the pod runs, so that
 * stage_writeback_failed at its end finds only what the pod wrote still dirty. Best effort: that
 * syncfs writes back whatever this did not. */
void stage_start_writeback(int watch);

/* 0, or the errno of a write-back of the stage that failed since WATCH was opened. The image
 * is a file on the host's disk: when the host's disk is full, the loop device's writes fail,
 * and the pages that failed read back as the image's holes (zeros), though the pod's own writes
 * had all succeeded. syncfs writes back what is still dirty (as the unmount would) and reports
 * the superblock's write-back errors since WATCH was opened, whoever else saw them. It costs
 * the write-back an ext4 shutdown used to skip for pods that wrote much (measured: +0.1 s at
 * 200 MiB, +0.25 to 1 s at 500 MiB); after it nothing is dirty, so a shutdown saves nothing. */
int stage_writeback_failed(int watch);

/* Says so in one line (the stage image directory TEMPLATE is in is where room is missing: the
 * host's disk "filled up" when it has less than ROOM bytes free now) and on STATUS_FD:
 * "host_disk=ERRNO", and with CHANGES (a change set was due, and is refused) "harvest=host_disk"
 * and "harvest_detail=WHY" as native/changeset.h's harvest_tell would. */
void stage_tell_writeback_failed(int err, const char *template_path, unsigned long long room, int changes, int status_fd);

/* The stage is full: no inode left (STAGE_FULL_INODES), or no room (STAGE_FULL_BYTES). tmpfs
 * refuses a write only at 0 free; ext4 refuses one it cannot fit whole with up to ~2 MiB still
 * free (measured: dd bs=1M ended with 0.8 MiB, bs=4M and more with 1.9 MiB, on caps of 16 MiB
 * to 1 GiB; mballoc's group preallocation is 2 MiB), so an ext4 stage with less than
 * max(STAGE_FULL_SLACK, 0.1% of its size) available counts as full. src/pod/bwrap.ts agrees. */
#define STAGE_FULL_SLACK (5ULL << 19)
#define STAGE_FULL_BYTES 1
#define STAGE_FULL_INODES 2
int stage_is_full(const struct statfs *sf);

#endif
