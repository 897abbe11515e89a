/*
 * clawpod-podexec: the resident of a live pod. It runs inside the pod (pod uid, seccomp, no
 * capabilities) and executes one command per request read from stdin, answering on stdout,
 * so an agent's many tool calls share one pod and each costs a fork+exec, not a new sandbox.
 *
 * Frames (little-endian):
 *   request:  u32 len | u32 timeout_ms | u32 max_output | argv as NUL-terminated strings
 *   response: u32 len | i32 status | u8 flags | u32 out_len | out | u32 err_len | err
 * status is the exit code, 128+signal, or 124 when the call's timeout killed it. Output beyond
 * max_output per stream is read and dropped (flags bit 0), so a chatty command cannot block;
 * flags bit 1 says the call's timeout fired.
 * Each command runs in its own process group; a timeout kills the whole group. EOF on stdin
 * ends the executor, and with it the pod.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include "cpulist.h"
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST (1 << 20)

static int last_timed_out;

/* At the memory cap the OOM killer should take the call, never the executor (whose death ends
 * the pod): each call is forked with a raised oom_score_adj. The executor is not dumpable, so
 * its /proc files are root's: the file is opened before that, and the executor raises its own
 * score around fork() and lowers it back (to the minimum it started with, which needs no
 * privilege); the call inherits the raised one. Best effort: without it, size alone decides. */
static int oom_adj_fd = -1;

static void set_oom_adj(const char *v) {
  if (oom_adj_fd >= 0 && pwrite(oom_adj_fd, v, strlen(v), 0) < 0) {}
}

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

static int write_full(int fd, const void *buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(fd, (const char *)buf + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    off += (size_t)w;
  }
  return 0;
}

struct sink { char *buf; uint32_t len, cap; int truncated; };

static void sink_add(struct sink *s, const char *data, size_t n) {
  size_t room = s->cap - s->len;
  if (n > room) { s->truncated = 1; n = room; }
  memcpy(s->buf + s->len, data, n);
  s->len += (uint32_t)n;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static cpu_set_t call_cpus;
static int has_cpus;

/* Runs argv; fills out/err; returns the status as described above. */
static int run(char **argv, uint32_t timeout_ms, struct sink *out, struct sink *err) {
  int po[2], pe[2];
  if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) return 125;
  set_oom_adj("500");
  pid_t pid = fork();
  if (pid != 0) set_oom_adj("0");
  if (pid < 0) return 125;
  if (pid == 0) {
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC); /* dup2 clears CLOEXEC on fd 0 only */
    dup2(devnull, 0);
    dup2(po[1], 1);
    dup2(pe[1], 2);
    signal(SIGPIPE, SIG_DFL);
    /* The call, not the executor, is pinned to the pod's CPUs: an executor pinned to a busy CPU
     * waited for it on every call (warm exec 0.9 -> 1.5 ms); nproc in the call sees the cap. */
    if (has_cpus && sched_setaffinity(0, sizeof call_cpus, &call_cpus) != 0) _exit(125);
    execvp(argv[0], argv);
    dprintf(2, "%s: %s\n", argv[0], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  setpgid(pid, pid);
  close(po[1]);
  close(pe[1]);
  double deadline = now_ms() + timeout_ms;
  int open_fds = 2, timed_out = 0;
  struct pollfd p[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
  char buf[65536];
  while (open_fds > 0) {
    int wait = (int)(deadline - now_ms());
    if (wait <= 0) { timed_out = 1; kill(-pid, SIGKILL); break; }
    if (poll(p, 2, wait) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(p[i].fd, buf, sizeof buf);
      if (n > 0) sink_add(i == 0 ? out : err, buf, (size_t)n);
      else { close(p[i].fd); p[i].fd = -1; open_fds--; }
    }
  }
  int status = 0;
  /* The command may have closed its output and still run: the deadline holds here too. */
  while (!timed_out) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (now_ms() >= deadline) { timed_out = 1; kill(-pid, SIGKILL); break; }
    usleep(500);
  }
  if (timed_out) while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  for (int i = 0; i < 2; i++) if (p[i].fd >= 0) close(p[i].fd);
  last_timed_out = timed_out;
  if (timed_out) return 124;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The executor runs as the pod's uid, like everything in the pod, and holds the pipe to the
 * host. Non-dumpable closes /proc/<executor>/{mem,fd,environ,...} to same-uid pod processes
 * (ptrace is refused by seccomp), so none can write code into it or speak the host protocol in
 * its name; its commands are dumpable again after their execve. Stray fds it inherited must
 * not reach them either. */
static void lock_down(void) {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) { perror("clawpod-podexec: PR_SET_DUMPABLE"); exit(125); }
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
}

int main(int argc, char **argv) {
  /* The host's channel: one socket (argv[1], fd 6 from clawpod) for both directions, kept off
   * stdio so bwrap's init in the pod never holds it; 0/1 when run by hand without one. */
  int in = 0, outfd = 1;
  if (argc > 1) { in = outfd = atoi(argv[1]); if (in < 3) return 125; }
  /* argv[2]: the pod's CPU list, set on each call (see run()). */
  if (argc > 2) { if (cpulist_parse(argv[2], &call_cpus) != 0) return 125; has_cpus = 1; }
  oom_adj_fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  lock_down();
  signal(SIGPIPE, SIG_IGN);
  for (;;) {
    uint32_t len;
    if (read_full(in, &len, 4) != 0) return 0;  /* clawpod closed the pod */
    if (len < 8 || len > MAX_REQUEST) return 125;
    char *req = malloc(len + 1);
    if (!req || read_full(in, req, len) != 0) return 125;
    req[len] = 0;
    uint32_t timeout_ms, max_output;
    memcpy(&timeout_ms, req, 4);
    memcpy(&max_output, req + 4, 4);
    char *argv[4096];
    int argc = 0;
    for (char *s = req + 8; s < req + len && argc < 4095; s += strlen(s) + 1) argv[argc++] = s;
    argv[argc] = NULL;
    struct sink out = { malloc(max_output + 1), 0, max_output, 0 }, err = { malloc(max_output + 1), 0, max_output, 0 };
    last_timed_out = 0;
    int32_t status = argc > 0 ? run(argv, timeout_ms, &out, &err) : 127;
    uint8_t truncated = (uint8_t)((out.truncated || err.truncated) | (last_timed_out << 1));
    uint32_t total = 4 + 1 + 4 + out.len + 4 + err.len;
    if (write_full(outfd, &total, 4) || write_full(outfd, &status, 4) || write_full(outfd, &truncated, 1) ||
        write_full(outfd, &out.len, 4) || write_full(outfd, out.buf, out.len) ||
        write_full(outfd, &err.len, 4) || write_full(outfd, err.buf, err.len)) return 125;
    free(out.buf);
    free(err.buf);
    free(req);
  }
}
