// clawpod-spawn.node: starts a pod's prelude without forking Node (src/pod/spawn.ts).
//
// child_process.spawn forks the whole Node process and then waits, on the main thread, until the
// child has execed: the fork copies Node's page tables and the exec tears that copy down, ~3 ms
// per pod here, and 50 pods started at once queue behind it. posix_spawn (glibc: a vfork-style
// clone sharing the parent's memory, signals blocked, every disposition reset in the child) costs
// only the exec, and it runs on a threadpool thread: the main thread never waits for it. The child gets exactly the descriptors it is given, at the numbers it is given;
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
#define MAX_ARGS (1 << 20)
#define DEV_NULL (-2)

// An Error "WHAT: strerror(ERR)" whose code names the errno the caller acts on.
static napi_value errno_error(napi_env env, const char *what, int err) {
  char msg[4352];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, text, error;
  napi_create_string_utf8(env, err == ENOENT ? "ENOENT" : err == EACCES ? "EACCES" : "ESPAWN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  return error;
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  napi_throw(env, errno_error(env, what, err));
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

// An integer, exactly: no NaN read as 0 (clawpod's stdin), no 3.9 read as 3.
static bool int_value(napi_env env, napi_value v, int32_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_double(env, v, &d) != napi_ok) return false;
  if (d != (double)(int32_t)d) return false;
  *out = (int32_t)d;
  return true;
}

// One start, from its arguments (copied on the main thread) to its pid or errno.
struct job {
  char *file;
  char **argv, **envp;
  uint32_t nargv, nenv, nfds;
  int fds[MAX_FDS], dups[MAX_FDS];
  bool setsid;
  pid_t pid;
  int err;
  napi_deferred deferred;
  napi_async_work work;
};

static void job_free(struct job *j) {
  for (int i = 0; i < MAX_FDS; i++)
    if (j->dups[i] >= 0) close(j->dups[i]);
  free(j->file);
  free_strings(j->argv, j->nargv);
  free_strings(j->envp, j->nenv);
  free(j);
}

// On a threadpool thread: posix_spawn returns only once the child has execed (or failed to),
// and under load the child can wait for a CPU for milliseconds. Node's main thread goes on.
// The child's parent-death signal (the prelude's PR_SET_PDEATHSIG) follows this thread, which
// lives as long as the process: libuv never ends its threadpool's threads.
static void job_run(napi_env env, void *data) {
  (void)env;
  struct job *j = data;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  if ((j->err = posix_spawn_file_actions_init(&fa)) != 0) return;
  posix_spawnattr_init(&at);
  int err = 0;
  for (uint32_t i = 0; i < j->nfds && !err; i++)
    if (j->fds[i] >= 0) err = posix_spawn_file_actions_adddup2(&fa, j->fds[i], (int)i);
  // Nothing else crosses: not clawpod's own descriptors, not the sources above, and not another
  // start's (all close-on-exec, and closed here whatever their flags).
  if (!err) err = posix_spawn_file_actions_addclosefrom_np(&fa, (int)j->nfds);
  for (uint32_t i = 0; i < j->nfds && !err; i++) {
    if (j->fds[i] >= 0) continue;
    err = posix_spawn_file_actions_addopen(&fa, (int)i, "/dev/null", O_RDWR, 0);
    // A gap: opened and closed again, so it is closed whatever clawpod had there.
    if (!err && j->fds[i] != DEV_NULL) err = posix_spawn_file_actions_addclose(&fa, (int)i);
  }
  // An action that could not be added would start the child without it: it is not started.
  if (err) {
    j->err = err;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return;
  }
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (j->setsid ? POSIX_SPAWN_SETSID : 0));
  j->err = posix_spawn(&j->pid, j->file, &fa, &at, j->argv, j->envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
}

static void job_done(napi_env env, napi_status status, void *data) {
  struct job *j = data;
  napi_value v;
  if (status == napi_ok && j->err == 0) {
    napi_create_int32(env, j->pid, &v);
    napi_resolve_deferred(env, j->deferred, v);
  } else {
    napi_reject_deferred(env, j->deferred, errno_error(env, j->file, status == napi_ok ? j->err : ECANCELED));
  }
  napi_delete_async_work(env, j->work);
  job_free(j);
}

// spawn(file, argv, envp, fds, setsid) -> Promise<pid>. fds[i] is the parent descriptor the
// child gets as descriptor i, DEV_NULL for /dev/null, or -1 for none; each must stay open until
// the promise settles. Rejects with the errno when the exec itself fails.
static napi_value js_spawn(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value args[5];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc != 5) return throw_type(env, "spawn(file, argv, envp, fds, setsid)");
  struct job *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, "spawn", ENOMEM);
  for (int i = 0; i < MAX_FDS; i++) j->dups[i] = -1;
  j->file = get_string(env, args[0]);
  j->argv = get_strings(env, args[1], &j->nargv);
  j->envp = get_strings(env, args[2], &j->nenv);
  napi_get_value_bool(env, args[4], &j->setsid);
  bool fds_ok = false;
  napi_is_array(env, args[3], &fds_ok);
  if (fds_ok) napi_get_array_length(env, args[3], &j->nfds);
  const char *bad = !j->file || !j->argv || !j->envp ? "spawn: every argument must be a string without NUL (and at most 1048576 of them)"
                    : j->nargv == 0 ? "spawn: no argv[0]"
                    : !fds_ok || j->nfds > MAX_FDS ? "spawn: descriptors must be an array of at most 64"
                    : NULL;
  if (bad) {
    job_free(j);
    return throw_type(env, bad);
  }
  for (uint32_t i = 0; i < j->nfds; i++) {
    napi_value el;
    napi_get_element(env, args[3], i, &el);
    if (!int_value(env, el, &j->fds[i]) || j->fds[i] < DEV_NULL) {
      job_free(j);
      return throw_type(env, "spawn: descriptors must be integers");
    }
    // A source numbered below nfds could be overwritten by an earlier dup2 in the child: move it
    // above every target first (close-on-exec, so only the dup2 gives it to the child).
    if (j->fds[i] >= 0 && j->fds[i] < (int)j->nfds) {
      j->dups[i] = fcntl(j->fds[i], F_DUPFD_CLOEXEC, (int)j->nfds);
      if (j->dups[i] < 0) {
        int e = errno;
        job_free(j);
        return throw_errno(env, "spawn: dup", e);
      }
      j->fds[i] = j->dups[i];
    }
  }
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "clawpod-spawn", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, job_run, job_done, j, &j->work) != napi_ok) {
    job_free(j);
    return throw_errno(env, "spawn: queue", EAGAIN);
  }
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_async_work(env, j->work);
    job_free(j);
    return throw_errno(env, "spawn: queue", EAGAIN);
  }
  return promise;
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
    if (!int_value(env, el, &pid) || pid <= 0) return throw_type(env, "reap: pids must be positive integers");
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
  napi_value fn, abi;
  // What src/pod/spawn.ts expects (SPAWN_ABI): a stale build is refused, never half-used.
  napi_create_int32(env, 2, &abi);
  napi_set_named_property(env, exports, "abi", abi);
  napi_create_function(env, "socketpair", NAPI_AUTO_LENGTH, js_socketpair, NULL, &fn);
  napi_set_named_property(env, exports, "socketpair", fn);
  napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, js_spawn, NULL, &fn);
  napi_set_named_property(env, exports, "spawn", fn);
  napi_create_function(env, "reap", NAPI_AUTO_LENGTH, js_reap, NULL, &fn);
  napi_set_named_property(env, exports, "reap", fn);
  return exports;
}
