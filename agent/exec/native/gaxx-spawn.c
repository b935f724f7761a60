/*
 * gaxx-spawn.node: starts a task's process with posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK)),
 * for the task launcher (agent/exec/task-spawn.ts). Node's child_process forks, and a fork copies
 * the page tables of the whole Node process and makes every page it writes afterwards fault once:
 * a cost that grows with the process and that some virtual machines make many times dearer. A
 * vfork-style spawn shares the parent's memory until the child execs: nothing is copied.
 *
 * What the child gets is what libuv gives a child of child_process.spawn with `detached: true`
 * and pipes: a new session (setsid), the work dir, every signal at its default and none blocked,
 * the given env, and fd i = pipe i (nothing else: every other fd of the launcher is close-on-exec).
 * Its end is learned from a pidfd polled on the launcher's own event loop, and it is reaped here,
 * by pid (libuv reaps only its own children, by pid, so neither takes the other's).
 *
 * JavaScript API (exports):
 *   spawn(file, argv[], env[] ("K=V"), cwd, modes, onExit(code, signal)) -> [pid, fd0, fd1, ...] | -errno
 *     modes: one letter per child fd from 0: 'w' the launcher writes (the child reads), 'r' the
 *     launcher reads. file is a path (no PATH search). onExit gets the exit code, or null and
 *     the signal number.
 *   usable() -> 0 when pidfds work on this kernel (Linux >= 5.3), else an errno.
 *
 * Built by scripts/build-native.mjs with the system's C compiler; without one the launcher
 * spawns through child_process, as before.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define MAX_FDS 8
/* Child-side pipe ends are moved up here before the dup2s, so no end sits on a target fd. */
#define HIGH_FD 64

typedef struct {
  uv_poll_t poll;
  int pidfd;
  pid_t pid;
  napi_env env;
  napi_ref on_exit;
  napi_async_context ctx;
} child_t;

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

static void closed(uv_handle_t *h) {
  child_t *c = (child_t *)h->data;
  close(c->pidfd);
  free(c);
}

static void exited(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  child_t *c = (child_t *)p->data;
  int st = 0;
  pid_t r = waitpid(c->pid, &st, WNOHANG);
  if (r == 0) return; /* not yet (a spurious wake-up) */
  uv_poll_stop(p);
  napi_env env = c->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, recv, args[2], result;
  napi_get_reference_value(env, c->on_exit, &fn);
  napi_get_global(env, &recv); /* napi_make_callback needs an object */
  napi_get_null(env, &args[0]);
  napi_get_null(env, &args[1]);
  if (r > 0 && WIFEXITED(st)) napi_create_int32(env, WEXITSTATUS(st), &args[0]);
  else if (r > 0 && WIFSIGNALED(st)) napi_create_int32(env, WTERMSIG(st), &args[1]);
  else napi_create_int32(env, -1, &args[0]); /* reaped elsewhere: the status is lost */
  if (napi_make_callback(env, c->ctx, recv, fn, 2, args, &result) == napi_pending_exception) {
    napi_value e; /* thrown by the callback: uncaught, as from any event */
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
  napi_delete_reference(env, c->on_exit);
  napi_async_destroy(env, c->ctx);
  napi_close_handle_scope(env, scope);
  uv_close((uv_handle_t *)p, closed);
}

static char *utf8(napi_env env, napi_value v) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return NULL;
  char *s = malloc(n + 1);
  if (s) napi_get_value_string_utf8(env, v, s, n + 1, &n);
  return s;
}

static void free_list(char **list) {
  if (!list) return;
  for (char **p = list; *p; p++) free(*p);
  free(list);
}

static char **utf8_list(napi_env env, napi_value arr) {
  uint32_t n = 0;
  if (napi_get_array_length(env, arr, &n) != napi_ok) return NULL;
  char **out = calloc(n + 1, sizeof(char *));
  if (!out) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    napi_get_element(env, arr, i, &e);
    if (!(out[i] = utf8(env, e))) {
      free_list(out);
      return NULL;
    }
  }
  return out;
}

static napi_value int_value(napi_env env, int v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

/* Makes the pipes, spawns, and closes the child's ends; 0 or an errno. */
static int start(const char *file, char **argv, char **envp, const char *cwd, const char *modes, int nfds, int parent[], pid_t *pid) {
  int child[MAX_FDS];
  int err = 0, made = 0;
  for (; made < nfds; made++) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
      err = errno;
      break;
    }
    int theirs = modes[made] == 'w' ? p[0] : p[1];
    parent[made] = modes[made] == 'w' ? p[1] : p[0];
    child[made] = fcntl(theirs, F_DUPFD_CLOEXEC, HIGH_FD);
    if (child[made] < 0) err = errno;
    close(theirs);
    if (err) {
      close(parent[made]);
      break;
    }
  }
  if (!err) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t all, none;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    for (int i = 0; i < nfds; i++) posix_spawn_file_actions_adddup2(&fa, child[i], i);
    if (cwd[0]) posix_spawn_file_actions_addchdir_np(&fa, cwd);
    /* Every signal back to its default, glibc's own two (32, 33) included: sigfillset leaves
       those out, and posix_spawn would then leave them ignored in the child (as fork does not). */
    memset(&all, 0xff, sizeof(all));
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);
    err = posix_spawn(pid, file, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
  }
  for (int i = 0; i < made; i++) close(child[i]);
  if (err)
    for (int i = 0; i < made; i++) close(parent[i]);
  return err;
}

static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value a[6];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 6) return int_value(env, -EINVAL);
  napi_valuetype fn_type;
  napi_typeof(env, a[5], &fn_type);
  char *file = utf8(env, a[0]), *cwd = utf8(env, a[3]), *modes = utf8(env, a[4]);
  char **argv = utf8_list(env, a[1]), **envp = utf8_list(env, a[2]);
  int nfds = modes ? (int)strlen(modes) : 0;
  int parent[MAX_FDS];
  pid_t pid = 0;
  int err = (!file || !cwd || !modes || !argv || !envp || fn_type != napi_function || nfds > MAX_FDS) ? EINVAL : 0;
  if (!err) err = start(file, argv, envp, cwd, modes, nfds, parent, &pid);
  free(file);
  free(cwd);
  free(modes);
  free_list(argv);
  free_list(envp);
  if (err) return int_value(env, -err);

  child_t *c = calloc(1, sizeof(child_t));
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  c->pid = pid;
  c->env = env;
  c->pidfd = pidfd_open_(pid);
  if (c->pidfd < 0 || uv_poll_init(loop, &c->poll, c->pidfd) != 0) {
    /* Cannot watch it (usable() said yes, so this is rare): end and reap it, report the error. */
    err = c->pidfd < 0 ? errno : EIO;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (c->pidfd >= 0) close(c->pidfd);
    free(c);
    for (int i = 0; i < nfds; i++) close(parent[i]);
    return int_value(env, -err);
  }
  c->poll.data = c;
  napi_create_reference(env, a[5], 1, &c->on_exit);
  napi_value name;
  napi_create_string_utf8(env, "gaxx-spawn", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &c->ctx);
  uv_poll_start(&c->poll, UV_READABLE, exited);

  napi_value ret;
  napi_create_array_with_length(env, (size_t)nfds + 1, &ret);
  napi_set_element(env, ret, 0, int_value(env, pid));
  for (int i = 0; i < nfds; i++) napi_set_element(env, ret, (uint32_t)i + 1, int_value(env, parent[i]));
  return ret;
}

static napi_value Usable(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = pidfd_open_(getpid());
  if (fd < 0) return int_value(env, errno);
  close(fd);
  return int_value(env, 0);
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, Spawn, NULL, &fn);
  napi_set_named_property(env, exports, "spawn", fn);
  napi_create_function(env, "usable", NAPI_AUTO_LENGTH, Usable, NULL, &fn);
  napi_set_named_property(env, exports, "usable", fn);
  return exports;
}
