/* The pod's stage on disk: a private copy of an ext4 template image on a loop device. */
#ifndef CLAWPOD_STAGE_H
#define CLAWPOD_STAGE_H
#include <sys/statfs.h>

/* Used stage bytes above which stage_discard is worth its kernel log line ("shut down
 * requested"): measured here, writing back 20 MiB at unmount takes ~70 ms (10 ms discarded),
 * 200 MiB ~300 ms (66 ms). Below this, a pod's end stays silent. */
#define DISCARD_ABOVE (128ULL << 20)

/* Mounts an unnamed copy of TEMPLATE (a root-owned ext4 image clawpod formatted) at STAGE.
 * Returns 0, or -1 with errno set and *what naming the step that failed. Every descriptor it
 * opened is closed on return: the mount alone keeps the loop device (autoclear) and with it
 * the unnamed image alive, so both go with the last mount namespace holding the stage. */
int stage_mount_image(const char *template_path, const char *stage, const char **what);

/* Throws away what the pod left on an image stage instead of writing it back when the stage
 * is unmounted (the image is discarded anyway). Only worth it with much written: it logs. */
void stage_discard(const char *stage);

/* The stage is full: tmpfs refuses a write only at 0 free; ext4 may keep a few blocks free
 * that a write larger than them cannot use, so a stage with less than STAGE_FULL_SLACK free
 * counts as full. */
#define STAGE_FULL_SLACK (256ULL << 10)
int stage_is_full(const struct statfs *sf);

#endif
