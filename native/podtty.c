/*
 * clawpod-podtty: the first program of a pod that has a terminal (clawpod exec -t). Runs inside
 * the pod, as the pod's uid under its seccomp filter, right before the pod's command.
 *
 * Usage: clawpod-podtty -- CMD [ARG...]
 *
 * Why: the pod's terminal (native/pty.c) is the controlling terminal of a session that also
 * holds the prelude and bwrap's outer process, outside the pod. Ctrl-C, Ctrl-Z and window-size
 * changes go to the terminal's foreground process group, and a stop signal to the prelude kills
 * the whole pod: so the command gets a process group of its own, inside the pod, and that group
 * becomes the foreground one. Ctrl-C then reaches the pod's foreground program, never the
 * prelude; a shell's job control works from there (it moves the foreground among its jobs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "--") != 0) {
    fprintf(stderr, "clawpod-podtty: usage: clawpod-podtty -- CMD [ARG...]\n");
    return 125;
  }
  if (isatty(0)) {
    /* A background group that sets the foreground gets SIGTTOU: ignored for that one call. */
    signal(SIGTTOU, SIG_IGN);
    if (setpgid(0, 0) != 0 || tcsetpgrp(0, getpgrp()) != 0)
      fprintf(stderr, "clawpod: the pod's command could not take its terminal (%s): Ctrl-C may stop the pod\n", strerror(errno));
    signal(SIGTTOU, SIG_DFL);
  }
  execvp(argv[2], argv + 2);
  fprintf(stderr, "clawpod: cannot run %s: %s\n", argv[2], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}
