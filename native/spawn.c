// clawpod-spawn.node: starts a pod's prelude without forking Node (src/pod/spawn.ts).
//
// child_process.spawn forks the whole Node process and then waits, on the main thread, until the
// child has execed: the fork copies Node's page tables and the exec tears that copy down, ~3 ms
// per pod here, and 50 pods started at once queue behind it. posix_spawn (glibc: a vfork-style
// clone sharing the parent's memory, signals blocked, every disposition reset in the child) costs
// only the exec. The child gets exactly the descriptors it is given, at the numbers it is given;
// every other descriptor is closed (closefrom), whatever clawpod's own process holds.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FDS 64
#define MAX_ARGS 4096
#define DEV_NULL (-2)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, text, error;
  napi_create_string_utf8(env, err == ENOENT ? "ENOENT" : err == EACCES ? "EACCES" : "ESPAWN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

// socketpair() -> [parentEnd, childEnd], both close-on-exec (the child's is dup2'd into place).
static napi_value js_socketpair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return throw_errno(env, "socketpair", errno);
  napi_value out, a, b;
  napi_create_array_with_length(env, 2, &out);
  napi_create_int32(env, sv[0], &a);
  napi_create_int32(env, sv[1], &b);
  napi_set_element(env, out, 0, a);
  napi_set_element(env, out, 1, b);
  return out;
}

static char *get_string(napi_env env, napi_value v) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) {  // an embedded NUL would silently cut the argument short
    free(s);
    return NULL;
  }
  return s;
}

static char **get_strings(napi_env env, napi_value arr, uint32_t *count) {
  bool is_array = false;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) return NULL;
  napi_get_array_length(env, arr, count);
  if (*count > MAX_ARGS) return NULL;
  char **out = calloc(*count + 1, sizeof(char *));
  if (!out) return NULL;
  for (uint32_t i = 0; i < *count; i++) {
    napi_value el;
    napi_get_element(env, arr, i, &el);
    out[i] = get_string(env, el);
    if (!out[i]) {
      for (uint32_t j = 0; j < i; j++) free(out[j]);
      free(out);
      return NULL;
    }
  }
  return out;
}

static void free_strings(char **v, uint32_t n) {
  if (!v) return;
  for (uint32_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

// spawn(file, argv, envp, fds, setsid) -> pid. fds[i] is the parent descriptor the child gets as
// descriptor i, DEV_NULL for /dev/null, or -1 for none. Throws with the errno when the exec itself fails.
static napi_value js_spawn(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value args[5];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc != 5) return throw_type(env, "spawn(file, argv, envp, fds, setsid)");
  char *file = get_string(env, args[0]);
  uint32_t nargv = 0, nenv = 0, nfds = 0;
  char **argv = get_strings(env, args[1], &nargv);
  char **envp = get_strings(env, args[2], &nenv);
  bool setsid = false;
  napi_get_value_bool(env, args[4], &setsid);
  bool fds_ok = false;
  napi_is_array(env, args[3], &fds_ok);
  if (fds_ok) napi_get_array_length(env, args[3], &nfds);
  napi_value result = NULL;
  int fds[MAX_FDS], dups[MAX_FDS];
  for (int i = 0; i < MAX_FDS; i++) dups[i] = -1;
  if (!file || !argv || !envp || nargv == 0 || !fds_ok || nfds > MAX_FDS) {
    throw_type(env, "spawn: bad arguments (strings without NUL, at most 64 descriptors)");
    goto out;
  }
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value el;
    napi_get_element(env, args[3], i, &el);
    if (napi_get_value_int32(env, el, &fds[i]) != napi_ok || fds[i] < DEV_NULL) {
      throw_type(env, "spawn: descriptors must be integers");
      goto out;
    }
    // A source numbered below nfds could be overwritten by an earlier dup2 in the child: move it
    // above every target first (close-on-exec, so only the dup2 below gives it to the child).
    if (fds[i] >= 0 && fds[i] < (int)nfds) {
      dups[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, (int)nfds);
      if (dups[i] < 0) {
        throw_errno(env, "spawn: dup", errno);
        goto out;
      }
      fds[i] = dups[i];
    }
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  for (uint32_t i = 0; i < nfds; i++)
    if (fds[i] >= 0) posix_spawn_file_actions_adddup2(&fa, fds[i], (int)i);
  // Nothing else crosses: not clawpod's own descriptors, not the sources above.
  posix_spawn_file_actions_addclosefrom_np(&fa, (int)nfds);
  for (uint32_t i = 0; i < nfds; i++) {
    if (fds[i] >= 0) continue;
    posix_spawn_file_actions_addopen(&fa, (int)i, "/dev/null", O_RDWR, 0);
    // A gap: opened and closed again, so it is closed whatever clawpod had there.
    if (fds[i] != DEV_NULL) posix_spawn_file_actions_addclose(&fa, (int)i);
  }
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (setsid ? POSIX_SPAWN_SETSID : 0));
  pid_t pid;
  int err = posix_spawn(&pid, file, &fa, &at, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (err != 0) {
    throw_errno(env, file, err);
    goto out;
  }
  napi_create_int32(env, pid, &result);
out:
  for (int i = 0; i < MAX_FDS; i++)
    if (dups[i] >= 0) close(dups[i]);
  free(file);
  free_strings(argv, nargv);
  free_strings(envp, nenv);
  return result;
}

// reap(pids) -> [[pid, code, signal], ...] for each of the given children that has ended (code
// -1 when a signal ended it). Never waits, and never reaps a child it was not given.
static napi_value js_reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, out;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  uint32_t n = 0;
  bool is_array = false;
  if (argc != 1 || napi_is_array(env, arg, &is_array) != napi_ok || !is_array) return throw_type(env, "reap(pids)");
  napi_get_array_length(env, arg, &n);
  napi_create_array(env, &out);
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    int32_t pid;
    napi_get_element(env, arg, i, &el);
    if (napi_get_value_int32(env, el, &pid) != napi_ok || pid <= 0) continue;
    int st;
    pid_t r;
    do r = waitpid(pid, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r != pid) continue;
    napi_value row, v;
    napi_create_array_with_length(env, 3, &row);
    napi_create_int32(env, pid, &v);
    napi_set_element(env, row, 0, v);
    napi_create_int32(env, WIFEXITED(st) ? WEXITSTATUS(st) : -1, &v);
    napi_set_element(env, row, 1, v);
    napi_create_int32(env, WIFSIGNALED(st) ? WTERMSIG(st) : 0, &v);
    napi_set_element(env, row, 2, v);
    napi_set_element(env, out, k++, row);
  }
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "socketpair", NAPI_AUTO_LENGTH, js_socketpair, NULL, &fn);
  napi_set_named_property(env, exports, "socketpair", fn);
  napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, js_spawn, NULL, &fn);
  napi_set_named_property(env, exports, "spawn", fn);
  napi_create_function(env, "reap", NAPI_AUTO_LENGTH, js_reap, NULL, &fn);
  napi_set_named_property(env, exports, "reap", fn);
  return exports;
}
