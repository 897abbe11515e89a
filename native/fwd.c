/*
 * clawpod-fwd: the pod's only way out. Runs inside the pod (as the pod's uid, under its
 * seccomp filter, in its empty network namespace): listens on 127.0.0.1:PORT, forwards every
 * connection to the host egress proxy's unix socket, then execs the pod's command.
 *
 * Usage: clawpod-fwd PORT SOCKET -- CMD [ARG...]
 *
 * It listens before the command starts, so the command's first request never races it. It is
 * the command's parent (so a shell that waits for its children never waits for it), serves in
 * a single-threaded poll loop, and exits with the command's status when the command ends.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXC 256
#define BUF 65536

struct conn { int a, b; };  /* a: pod client (TCP), b: proxy (unix) */

static int chld_pipe[2];
static pid_t cmd_pid;

static void on_chld(int sig) { (void)sig; if (write(chld_pipe[1], "c", 1) < 0) {} }

/* Exits with the command's status once it has ended. */
static void reap_command(void) {
  int st;
  if (waitpid(cmd_pid, &st, WNOHANG) != cmd_pid) return;
  exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static int listen_tcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0) {
    fprintf(stderr, "clawpod: the pod's proxy forwarder cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
    exit(125);
  }
  return fd;
}

static int connect_unix(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un su = { .sun_family = AF_UNIX };
  snprintf(su.sun_path, sizeof su.sun_path, "%s", path);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&su, sizeof su) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

/* Moves what is readable from `from` to `to`; returns 0 when `from` is done (EOF or error). */
static int pump(int from, int to) {
  char buf[BUF];
  ssize_t n = read(from, buf, sizeof buf);
  if (n <= 0) return 0;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = write(to, buf + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return 0;
    off += w;
  }
  return 1;
}

static void serve(int lfd, const char *sock) {
  struct conn c[MAXC];
  int n = 0;
  for (;;) {
    struct pollfd p[2 + 2 * MAXC];
    p[0].fd = lfd; p[0].events = n < MAXC ? POLLIN : 0;
    for (int i = 0; i < n; i++) {
      p[1 + 2 * i].fd = c[i].a; p[1 + 2 * i].events = POLLIN;
      p[2 + 2 * i].fd = c[i].b; p[2 + 2 * i].events = POLLIN;
    }
    p[1 + 2 * n].fd = chld_pipe[0]; p[1 + 2 * n].events = POLLIN;
    if (poll(p, (nfds_t)(2 + 2 * n), -1) < 0 && errno != EINTR) exit(125);
    reap_command();
    for (int i = n - 1; i >= 0; i--) {
      short ra = p[1 + 2 * i].revents, rb = p[2 + 2 * i].revents;
      int alive = 1;
      if (ra & (POLLIN | POLLHUP | POLLERR)) alive = pump(c[i].a, c[i].b);
      if (alive && (rb & (POLLIN | POLLHUP | POLLERR))) alive = pump(c[i].b, c[i].a);
      if (!alive) { close(c[i].a); close(c[i].b); c[i] = c[--n]; }
    }
    if (p[0].revents & POLLIN) {
      int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
      if (a < 0) continue;
      int b = connect_unix(sock);
      if (b < 0) { close(a); continue; }
      c[n].a = a; c[n].b = b; n++;
    }
  }
}

/* Same uid as the pod, holding the way to the host proxy: non-dumpable, so no pod process can
 * open its /proc/<pid>/mem or fds (the command it starts is dumpable again after execve), and
 * no stray inherited fd reaches the command. */
static void lock_down(void) {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) { perror("clawpod-fwd: PR_SET_DUMPABLE"); exit(125); }
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
}

int main(int argc, char **argv) {
  lock_down();
  /* --pass-fd N: a descriptor the command must get (a live pod's executor channel); every
   * other inherited one was made close-on-exec by lock_down. */
  int cmd = 3, pass = -1;
  if (argc > 5 && strcmp(argv[3], "--pass-fd") == 0) { pass = atoi(argv[4]); cmd = 5; }
  if (argc < cmd + 2 || strcmp(argv[cmd], "--") != 0 || (cmd == 5 && pass < 3)) {
    fprintf(stderr, "usage: clawpod-fwd PORT SOCKET [--pass-fd N] -- CMD [ARG...]\n");
    return 125;
  }
  cmd++;
  int lfd = listen_tcp(atoi(argv[1]));
  signal(SIGPIPE, SIG_IGN);
  if (pipe2(chld_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return 125;
  struct sigaction sa = {0};
  sa.sa_handler = on_chld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  cmd_pid = fork();
  if (cmd_pid < 0) return 125;
  if (cmd_pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    if (pass >= 0 && fcntl(pass, F_SETFD, 0) != 0) _exit(125);
    execvp(argv[cmd], argv + cmd);
    fprintf(stderr, "%s: %s\n", argv[cmd], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  if (pass >= 0) close(pass);  /* the channel is the command's, not ours */
  serve(lfd, argv[2]);
  return 0;
}
