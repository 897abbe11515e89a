/* The change set of a pod, made by its prelude (see changeset.c). */
#ifndef CLAWPOD_CHANGESET_H
#define CLAWPOD_CHANGESET_H

/* Copies the workspace tree `from` into `to` (copy mode); exits 125 when it does not fit. */
void copy_workspace(const char *from, const char *to);

/* Writes the change set of the pod staged at `stage` into `dest`; 0 on success. */
int harvest_changes(const char *stage, const char *dest, int copy_mode, int userns_mode);

#endif
