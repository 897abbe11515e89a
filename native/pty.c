/*
 * clawpod-pty: the pseudo-terminal of an interactive pod (clawpod exec -t).
 *
 * Why: Node cannot open a pty. The pod must never share the user's own terminal when it is
 * interactive (it could push keystrokes into it, change its line discipline, read what the user
 * types into other programs); it gets a terminal of its own, which clawpod relays.
 *
 * Usage: clawpod-pty ROWS COLS CTL_FD -- PROGRAM [ARG...]      (PROGRAM: clawpod-podinit)
 *
 * Runs on the host, between clawpod and the pod's prelude, with clawpod's privileges. It opens a
 * pty (ROWS x COLS), forks; the child makes a session of its own with the pty's slave as its
 * controlling terminal on fds 0-2 and execs PROGRAM. Every other descriptor PROGRAM inherits
 * (3 and up: the seccomp program, status, go and /etc pipes) passes through untouched; the
 * master and CTL_FD never reach it. The parent relays: fd 0 (clawpod's pipe of the user's
 * keystrokes) to the master, the master to fd 1 (a pipe clawpod reads, through the redactor when
 * the run has secrets), and "ROWS COLS\n" lines on CTL_FD (a socket) to TIOCSWINSZ on the master:
 * the kernel then sends SIGWINCH to the pod's foreground group. Once it has started PROGRAM it
 * writes "pid N\n" on CTL_FD (clawpod watches the prelude's mount namespace through that pid).
 *
 * Signals: SIGTERM, SIGINT or SIGHUP while clawpod lives are passed to PROGRAM as SIGTERM (the
 * prelude kills the pod, saves its change set and exits); when clawpod itself is gone (our
 * PDEATHSIG) we exit at once, so the prelude's own PDEATHSIG tells it nobody will read a change
 * set. Ctrl-C is no signal here: it is a byte the pty's line discipline turns into SIGINT for the
 * pod's foreground group.
 *
 * Exit status: PROGRAM's, exactly: its code, or 128 + the signal that ended it (what clawpod
 * reads from the prelude when it is spawned directly). 125 when the pty cannot be set up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define BUF 65536

static void fail(const char *what) {
  fprintf(stderr, "clawpod: cannot set up the pod's terminal: %s: %s\n", what, strerror(errno));
  exit(125);
}

static long parse_num(const char *s, long lo, long hi) {
  char *end;
  errno = 0;
  long n = strtol(s, &end, 10);
  if (errno || end == s || *end || n < lo || n > hi) {
    fprintf(stderr, "clawpod-pty: bad number %s (usage: clawpod-pty ROWS COLS CTL_FD -- PROGRAM [ARG...])\n", s);
    exit(125);
  }
  return n;
}

static void set_size(int master, long rows, long cols) {
  struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
  if (ioctl(master, TIOCSWINSZ, &ws) != 0) { /* a closed pty has no size to keep */ }
}

/* Writes all of buf to fd (a pipe to clawpod, which may be non-blocking). 0, or -1 when the
 * reader is gone: the output is then dropped, the pod still runs to its end. */
static int write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) { struct pollfd p = { fd, POLLOUT, 0 }; poll(&p, 1, -1); continue; }
    if (w <= 0) return -1;
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

/* "ROWS COLS\n" lines; a partial line is kept for the next read. */
static void read_ctl(int ctl, int master, int *open_) {
  static char line[64];
  static size_t have;
  ssize_t n = read(ctl, line + have, sizeof line - 1 - have);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) { *open_ = 0; return; }
  have += (size_t)n;
  line[have] = 0;
  char *nl;
  while ((nl = memchr(line, '\n', have)) != NULL) {
    *nl = 0;
    long rows, cols;
    if (sscanf(line, "%ld %ld", &rows, &cols) == 2 && rows > 0 && cols > 0 && rows < 65536 && cols < 65536)
      set_size(master, rows, cols);
    size_t used = (size_t)(nl - line) + 1;
    memmove(line, nl + 1, have - used);
    have -= used;
  }
  if (have == sizeof line - 1) have = 0;  /* no line is that long: drop it */
}

int main(int argc, char **argv) {
  if (argc < 6 || strcmp(argv[4], "--") != 0) {
    fprintf(stderr, "clawpod-pty: usage: clawpod-pty ROWS COLS CTL_FD -- PROGRAM [ARG...]\n");
    return 125;
  }
  long rows = parse_num(argv[1], 1, 65535), cols = parse_num(argv[2], 1, 65535);
  int ctl = (int)parse_num(argv[3], 3, 1 << 20);
  pid_t parent = getppid();
  /* clawpod gone: SIGTERM, and then we go too (see the signal loop). */
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) fail("prctl");
  if (getppid() != parent) return 125;
  fcntl(ctl, F_SETFD, FD_CLOEXEC);

  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) fail("posix_openpt");
  if (grantpt(master) != 0 || unlockpt(master) != 0) fail("unlockpt");
  /* The slave from the master itself, never by a name someone could have swapped. */
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) fail("TIOCGPTPEER");
  set_size(master, rows, cols);

  sigset_t sigs, old;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGCHLD);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &sigs, &old) != 0) fail("sigprocmask");
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) fail("signalfd");
  signal(SIGPIPE, SIG_IGN);

  pid_t pid = fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    /* The prelude starts with the signal state clawpod would have given it. */
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (setsid() < 0) fail("setsid");
    if (ioctl(slave, TIOCSCTTY, 0) != 0) fail("TIOCSCTTY");
    for (int fd = 0; fd < 3; fd++) if (dup2(slave, fd) != fd) fail("dup2");
    /* master, slave's own number, sfd and ctl are close-on-exec: only fds 0-2 hold the pty. */
    execv(argv[5], argv + 5);
    fprintf(stderr, "clawpod: cannot start %s: %s (run npm run build)\n", argv[5], strerror(errno));
    _exit(125);
  }

  char pidline[32];
  int pn = snprintf(pidline, sizeof pidline, "pid %d\n", (int)pid);
  if (write_all(ctl, pidline, (size_t)pn) != 0) { /* clawpod reads it when it can */ }
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  fcntl(ctl, F_SETFL, fcntl(ctl, F_GETFL) | O_NONBLOCK);

  static char in[BUF], out[BUF];
  size_t in_len = 0, in_off = 0;
  int in_open = 1, ctl_open = 1, out_open = 1, status = 0, done = 0;
  /* Our own slave descriptor stays open while the pod runs: the master never reads EIO while
   * the pod's side is between holders (before the child has it, or between pod processes). */
  while (!done) {
    struct pollfd p[4] = {
      { sfd, POLLIN, 0 },
      { master, (short)(POLLIN | (in_len > in_off ? POLLOUT : 0)), 0 },
      { in_open && in_len == in_off ? 0 : -1, POLLIN, 0 },
      { ctl_open ? ctl : -1, POLLIN, 0 },
    };
    if (poll(p, 4, -1) < 0) { if (errno == EINTR) continue; fail("poll"); }
    if (p[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
          if (waitpid(pid, &status, WNOHANG) == pid) done = 1;
        } else if (getppid() != parent) {
          /* clawpod died: leave now; the prelude's PDEATHSIG kills the pod, skipping the harvest. */
          _exit(128 + SIGTERM);
        } else {
          kill(pid, SIGTERM);
        }
      }
    }
    if (p[1].revents & POLLIN) {
      ssize_t n = read(master, out, sizeof out);
      if (n > 0 && out_open && write_all(1, out, (size_t)n) != 0) out_open = 0;
    }
    if (p[1].revents & POLLOUT) {
      ssize_t n = write(master, in + in_off, in_len - in_off);
      if (n > 0) in_off += (size_t)n;
      if (in_off == in_len) in_off = in_len = 0;
    }
    if (p[2].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(0, in, sizeof in);
      if (n > 0) { in_len = (size_t)n; in_off = 0; }
      else if (n == 0 || (errno != EAGAIN && errno != EINTR)) in_open = 0;
    }
    if (p[3].revents & (POLLIN | POLLHUP)) read_ctl(ctl, master, &ctl_open);
  }
  /* The prelude has reaped the whole pod: what is left in the pty is the last output. */
  close(slave);
  for (;;) {
    struct pollfd p = { master, POLLIN, 0 };
    if (poll(&p, 1, 200) <= 0) break;
    ssize_t n = read(master, out, sizeof out);
    if (n <= 0) break;
    if (out_open && write_all(1, out, (size_t)n) != 0) out_open = 0;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}
