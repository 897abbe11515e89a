/* Descriptor hygiene of the pod prelude (see fds.c). */
#ifndef CLAWPOD_FDS_H
#define CLAWPOD_FDS_H

/* stdin, stdout and stderr that are a directory, a path handle, a block device, a listening
 * socket or no file at all are replaced by /dev/null, with one line on stderr. */
void sanitize_stdio(void);

/* Closes every descriptor from 3 up except the N in KEEP. */
void close_inherited(const int *keep, int n);

#endif
