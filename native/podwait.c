/*
 * clawpod-podwait: the resident of a warm pod (src/pod/warm.ts). The pod is started whole ahead
 * of any run (prelude, cgroups, stage, overlay, bwrap, seccomp, namespaces) with this as its
 * command; it tells clawpod it is ready, then blocks reading ONE request from stdin and execve()s
 * it in place: no fork, so the command is the pod's own process (pid 2 under bwrap's init, as a
 * cold pod's), its stdout and stderr are the pod's pipes, and the pod's exit is its exit.
 *
 * Usage (inside the pod): clawpod-podwait READY_FD
 *   READY_FD  a pipe to clawpod: one byte "r" once this is waiting, then closed (so no command
 *             ever holds it)
 * Request (stdin, little-endian): u32 len | u32 flags | argv as NUL-terminated strings (len
 * counts flags and argv; 8 <= len <= MAX_REQUEST; at least one argument, the last byte NUL).
 *   flags bit 0: the command's stdin is /dev/null (as a cold pod's without input).
 * Nothing is run on EOF (the pod was retired unused) or on a bad request: exit 125. Exactly the
 * request's bytes are read, nothing after them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_REQUEST (1 << 20)
#define MAX_ARGS 65536
#define FLAG_STDIN_NULL 1u
#define KNOWN_FLAGS FLAG_STDIN_NULL

/* 0 when all N bytes came; -1 on EOF or an error before that. */
static int read_full(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

static int bad(const char *why) {
  fprintf(stderr, "clawpod-podwait: refused the request: %s (nothing was run)\n", why);
  return 125;
}

int main(int argc, char **argv) {
  if (argc != 2) return bad("usage: clawpod-podwait READY_FD");
  char *end;
  long ready = strtol(argv[1], &end, 10);
  if (*end || ready < 3 || ready > 1024) return bad("bad READY_FD");
  /* Only stdio reaches the command: the ready pipe and anything else bwrap left open go now. */
  if (write(ready, "r", 1) != 1) return 125;
  syscall(SYS_close_range, 3U, ~0U, 0);
  uint32_t len;
  if (read_full(0, &len, 4) != 0) return 125; /* retired: EOF before any request */
  if (len < 8 || len > MAX_REQUEST) return bad("bad length");
  char *req = malloc(len);
  if (!req) return bad("out of memory");
  if (read_full(0, req, len) != 0) return bad("cut short");
  uint32_t flags;
  memcpy(&flags, req, 4);
  if (flags & ~KNOWN_FLAGS) return bad("unknown flags");
  if (req[len - 1] != 0) return bad("argv not NUL-terminated");
  static char *args[MAX_ARGS + 1];
  int n = 0;
  for (char *s = req + 4; s < req + len; s += strlen(s) + 1) {
    if (n == MAX_ARGS) return bad("too many arguments");
    args[n++] = s;
  }
  if (n == 0 || args[0][0] == 0) return bad("no command");
  args[n] = NULL;
  if (flags & FLAG_STDIN_NULL) {
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) != 0) return bad("cannot open /dev/null");
    if (null != 0) close(null);
  }
  execvp(args[0], args);
  int e = errno;
  fprintf(stderr, "%s: %s\n", args[0], strerror(e));
  return e == ENOENT ? 127 : 126;
}
