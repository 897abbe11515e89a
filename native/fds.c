/* What a pod inherits from clawpod's caller, made exact before anything else happens (see podinit.c):
 * stdio that cannot honestly be a command's stdio becomes /dev/null, and every other inherited
 * descriptor but the ones named is closed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "fds.h"

static void fail(const char *what) {
  fprintf(stderr, "clawpod: pod set-up failed: %s: %s\n", what, strerror(errno));
  exit(125);
}

static int is_kept(int fd, const int *keep, int n) {
  for (int i = 0; i < n; i++) if (keep[i] == fd) return 1;
  return 0;
}

/* Descriptors clawpod inherited from its caller (a shell's `exec 300</`, a make jobserver, an
 * IDE's socket) are not close-on-exec and would reach the pod: a directory fd is the host
 * filesystem. Everything but stdio and the fds named on our command line goes, before anything
 * else happens, so no later step (and no future backend exec'd from here) can hand one on. */
void close_inherited(const int *keep, int n) {
  int next = 3;
  for (int fd = 3; fd < 4096; fd++) {
    if (!is_kept(fd, keep, n)) continue;
    if (fd > next && syscall(SYS_close_range, next, fd - 1, 0) != 0) fail("close_range");
    next = fd + 1;
  }
  if (syscall(SYS_close_range, next, ~0U, 0) != 0) fail("close_range");
}

/* stdin, stdout and stderr go to the pod as they are, so they must be what a command's stdio can
 * honestly be: a terminal or another character device, a pipe, a connected socket, a regular
 * file. A directory (`< /`) or an O_PATH fd is the host filesystem outside every namespace, a
 * block device is a disk, a listening socket takes the host's connections: each is replaced by
 * /dev/null, with one line saying so. */
/* Terminals (ttys, the console, ptys) and the harmless memory devices; no raw disk (sg, nvme
 * generic), no kernel memory, log, fuse or tun device. */
static int harmless_chardev(dev_t d) {
  unsigned ma = major(d), mi = minor(d);
  if (ma == 1) return mi == 3 || mi == 5 || mi == 7 || mi == 8 || mi == 9;  /* null zero full random urandom */
  return ma == 4 || ma == 5 || (ma >= 136 && ma <= 143);
}

/* A socket the pod could aim anywhere in the host's network namespace (unbound, bound but not
 * connected, datagram, netlink...) is not stdio: only a connected stream to one peer is. */
static int connected_stream(int fd) {
  int type = 0, domain = 0;
  socklen_t len = sizeof type;
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || (type != SOCK_STREAM && type != SOCK_SEQPACKET)) return 0;
  len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return 0;
  if (domain != AF_UNIX && domain != AF_INET && domain != AF_INET6) return 0;
  return getpeername(fd, (struct sockaddr *)&peer, &plen) == 0;
}

/* Kernel pseudo files (proc, sys, namespaces, pidfds, cgroups, bpf, debug and trace): a
 * namespace handle or another process's memory is not a command's input. */
static int pseudo_fs(int fd) {
  struct statfs sf;
  if (fstatfs(fd, &sf) != 0) return 1;
  switch ((unsigned long)sf.f_type) {
    case 0x9fa0: case 0x62656572: case 0x6e736673: case 0x50494446: case 0x27e0eb: case 0x63677270:
    case 0xcafe4a11: case 0x64626720: case 0x74726163: case 0x73636673:
      return 1;
    default: return 0;
  }
}

void sanitize_stdio(void) {
  static const char *names[] = { "stdin", "stdout", "stderr" };
  for (int fd = 0; fd < 3; fd++) {
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) continue;  /* closed: bwrap and the pod see it closed */
    const char *why = NULL;
    int listening = 0;
    socklen_t len = sizeof listening;
    if (fl & O_PATH) why = "a path handle";
    else if (fstat(fd, &st) != 0) why = "unreadable";
    else if (S_ISDIR(st.st_mode)) why = "a directory";
    else if (S_ISBLK(st.st_mode)) why = "a block device";
    else if (S_ISSOCK(st.st_mode) && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening)
      why = "a listening socket";
    else if (S_ISSOCK(st.st_mode) && !connected_stream(fd)) why = "a socket not connected to one peer";
    else if (S_ISCHR(st.st_mode) && !harmless_chardev(st.st_rdev)) why = "a device other than a terminal or /dev/null";
    else if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
      why = "not a file, pipe, socket or terminal";
    else if (S_ISREG(st.st_mode) && pseudo_fs(fd)) why = "a kernel pseudo file";
    if (!why) continue;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, fd) != fd) fail("replace a bad stdio descriptor");
    close(null);
    fprintf(stderr, "clawpod: the pod's %s was %s; it gets /dev/null instead\n", names[fd], why);
  }
}

