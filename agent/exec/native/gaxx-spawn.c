/*
 * gaxx-spawn.node: starts a task's process with vfork and exec, for the task launcher
 * (agent/exec/task-spawn.ts). Node's child_process forks, and a fork copies the page tables of
 * the whole Node process and makes every page it writes afterwards fault once: a cost that grows
 * with the process and that some virtual machines make many times dearer. A vfork child shares
 * the parent's memory until it execs: nothing is copied. Between the two it also sets the task's
 * resource limits, which otherwise cost an exec of prlimit(1) per task.
 *
 * What the child gets is what libuv gives a child of child_process.spawn with `detached: true`
 * and pipes: a new session (setsid), the work dir, every signal at its default and none blocked,
 * the given env, and fd i = pipe i (nothing else: every fd above the pipes is closed, close_above).
 * Its end is learned from a pidfd polled on the launcher's own event loop, and it is reaped here,
 * by pid (libuv reaps only its own children, by pid, so neither takes the other's). Its process
 * group is killed just before it is reaped: the group goes with its leader (a task owns nothing
 * after its end), and while the leader is an unreaped zombie its pid is still its own, so the
 * signal cannot reach a process that was given the number afterwards.
 *
 * JavaScript API (exports):
 *   spawn(file, argv[], env[] ("K=V"), cwd, modes, limits, onExit(code, signal)[, given]) -> [pid, fd0, fd1, ...] | -errno
 *     | -(errno | SETUP_FAILED): the errno of the command's exec (it cannot be run: the caller
 *     reports it as the command's, 127 or 126), or, flagged, of a step before it (the pipes,
 *     vfork, setsid, the work dir, the limits: the task could not be set up, not the command's).
 *     modes: one letter per child fd from 0: 'w' the launcher writes (the child reads), 'r' the
 *     launcher reads, 'g' the descriptor `given` (a copy of it; -1 in the result, the caller
 *     keeps and closes its own). file is a path (no PATH search). limits: [[kind, soft, hard], ...], kind
 *     0 RLIMIT_CPU, 1 RLIMIT_AS, 2 RLIMIT_NPROC. onExit gets the exit code, or null and the
 *     signal number.
 *   usable() -> 0 when pidfds work on this kernel (Linux >= 5.3), else an errno.
 *   trim() -> malloc_trim(0): 1 when glibc gave free memory inside its heaps back to the system,
 *     0 when there was none (or this is not glibc). Free memory stays resident otherwise: glibc
 *     returns on its own only what is free at the top of a heap.
 *
 * Built by scripts/build-native.mjs with the system's C compiler; without one the launcher
 * spawns through child_process (and prlimit), as before.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <node_api.h>
#include <signal.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define MAX_FDS 8
/* Child-side pipe ends are moved up here before the dup2s, so no end sits on a target fd. */
#define HIGH_FD 64
/* Or'ed into an errno that came before the command's exec (see spawn above); errnos are < 4096. */
#define SETUP_FAILED 0x10000

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
  siginfo_t info;
  memset(&info, 0, sizeof info);
  int w;
  do w = waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOHANG | WNOWAIT);
  while (w < 0 && errno == EINTR);
  if (w == 0 && info.si_pid == 0) return; /* not yet (a spurious wake-up) */
  if (w == 0) kill(-c->pid, SIGKILL);     /* the zombie still holds the pid: the group is the task's */
  int st = 0;
  pid_t r;
  do r = waitpid(c->pid, &st, WNOHANG);
  while (r < 0 && errno == EINTR);
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

/* A resource limit the child gets before it execs (setrlimit), as prlimit(1) would set it. */
typedef struct {
  int resource;
  struct rlimit value;
} limit_t;

/* The kernel's struct sigaction, zeroed: SIG_DFL, no flags, no mask (glibc's sigaction refuses its own two signals). */
typedef struct {
  unsigned long words[4];
} kernel_sigaction_t;

/*
 * Closes every fd from `first` up, in the child: its pipes are below, and a descriptor the
 * launcher itself was given without close-on-exec must not reach a task (inherited-fds.ts closes
 * those at its start; this keeps the promise whatever the launcher holds). close_range (Linux
 * 5.9) where there is one, else one close per fd up to the soft RLIMIT_NOFILE.
 */
static void close_above(int first) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0) return;
#endif
  struct rlimit nofile;
  long top = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY ? (long)nofile.rlim_cur : 65536;
  for (long fd = first; fd < top; fd++) close((int)fd);
}

/*
 * The child's side, between vfork and exec: it runs on the parent's memory and stack, so it only
 * makes system calls, and reports a failure through *err (the parent reads it once the child has
 * exec'd or exited). Every signal goes back to its default (handlers are the parent's code) and
 * none stays blocked, as libuv does for child_process.
 */
static void child_side(const char *file, char **argv, char **envp, const char *cwd, int nfds, const int fds[], const limit_t limits[], int nlimits,
                       volatile int *err) {
  kernel_sigaction_t dfl;
  memset(&dfl, 0, sizeof(dfl));
  for (int sig = 1; sig <= 64; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
  if (setsid() < 0) goto failed;
  for (int i = 0; i < nfds; i++)
    if (dup2(fds[i], i) < 0) goto failed;
  close_above(nfds);
  if (cwd[0] && chdir(cwd) < 0) goto failed;
  for (int i = 0; i < nlimits; i++)
    if (setrlimit(limits[i].resource, &limits[i].value) < 0) goto failed;
  unsigned long none = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
  execve(file, argv, envp);
  *err = errno; /* the command's own: it cannot be run */
  _exit(127);
failed:
  *err = errno | SETUP_FAILED;
  _exit(127);
}

/*
 * Starts the child with vfork (nothing of this process is copied); 0 or an errno. A frame of its
 * own: no local of the caller's lives across the vfork.
 */
static __attribute__((noinline)) int vfork_child(const char *file, char **argv, char **envp, const char *cwd, int nfds, const int child[],
                                                 const limit_t limits[], int nlimits, pid_t *pid) {
  /* No signal handler of this process may run in the child: all are blocked across vfork. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  volatile int child_err = 0;
  pid_t p = vfork();
  if (p == 0) child_side(file, argv, envp, cwd, nfds, child, limits, nlimits, &child_err);
  int err = p < 0 ? errno | SETUP_FAILED : child_err;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (p > 0 && err) /* it failed before exec and exited: reap it here */
    while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {
    }
  *pid = p;
  return err;
}

/* Makes the pipes, starts the child (vfork_child), closes the child's ends; 0 or an errno. */
static int start(const char *file, char **argv, char **envp, const char *cwd, const char *modes, int nfds, int given, const limit_t limits[], int nlimits,
                 int parent[], pid_t *pid) {
  int child[MAX_FDS] = {0}; /* every one up to nfds is set before it is used */
  int err = 0, made = 0;
  for (; made < nfds; made++) {
    if (modes[made] == 'g') {
      parent[made] = -1;
      child[made] = given < 0 ? -1 : fcntl(given, F_DUPFD_CLOEXEC, HIGH_FD);
      if (child[made] < 0) {
        err = (given < 0 ? EBADF : errno) | SETUP_FAILED;
        break;
      }
      continue;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
      err = errno | SETUP_FAILED;
      break;
    }
    int theirs = modes[made] == 'w' ? p[0] : p[1];
    parent[made] = modes[made] == 'w' ? p[1] : p[0];
    child[made] = fcntl(theirs, F_DUPFD_CLOEXEC, HIGH_FD);
    if (child[made] < 0) err = errno | SETUP_FAILED;
    close(theirs);
    if (err) {
      close(parent[made]);
      break;
    }
  }
  if (!err) err = vfork_child(file, argv, envp, cwd, nfds, child, limits, nlimits, pid);
  for (int i = 0; i < made; i++) close(child[i]);
  if (err)
    for (int i = 0; i < made; i++)
      if (parent[i] >= 0) close(parent[i]);
  return err;
}

/* [[kind, soft, hard], ...] with kind 0 cpu (seconds), 1 address space (bytes), 2 processes; -1 when malformed. */
static int read_limits(napi_env env, napi_value arr, limit_t out[], int max) {
  static const int resources[] = {RLIMIT_CPU, RLIMIT_AS, RLIMIT_NPROC};
  uint32_t n = 0;
  if (napi_get_array_length(env, arr, &n) != napi_ok || n > (uint32_t)max) return -1;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e, v;
    double kind, soft, hard;
    if (napi_get_element(env, arr, i, &e) != napi_ok) return -1;
    if (napi_get_element(env, e, 0, &v) != napi_ok || napi_get_value_double(env, v, &kind) != napi_ok) return -1;
    if (napi_get_element(env, e, 1, &v) != napi_ok || napi_get_value_double(env, v, &soft) != napi_ok) return -1;
    if (napi_get_element(env, e, 2, &v) != napi_ok || napi_get_value_double(env, v, &hard) != napi_ok) return -1;
    if (kind < 0 || kind > 2 || soft < 0 || hard < soft) return -1;
    out[i].resource = resources[(int)kind];
    out[i].value.rlim_cur = (rlim_t)soft;
    out[i].value.rlim_max = (rlim_t)hard;
  }
  return (int)n;
}

static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value a[8];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 7) return int_value(env, -EINVAL);
  int32_t given = -1;
  if (argc > 7 && napi_get_value_int32(env, a[7], &given) != napi_ok) given = -1;
  napi_valuetype fn_type;
  napi_typeof(env, a[6], &fn_type);
  limit_t limits[3];
  int nlimits = read_limits(env, a[5], limits, 3);
  char *file = utf8(env, a[0]), *cwd = utf8(env, a[3]), *modes = utf8(env, a[4]);
  char **argv = utf8_list(env, a[1]), **envp = utf8_list(env, a[2]);
  int nfds = modes ? (int)strlen(modes) : 0;
  int parent[MAX_FDS];
  pid_t pid = 0;
  int err = (!file || !cwd || !modes || !argv || !envp || fn_type != napi_function || nfds > MAX_FDS || nlimits < 0) ? EINVAL | SETUP_FAILED : 0;
  if (!err) err = start(file, argv, envp, cwd, modes, nfds, given, limits, nlimits, parent, &pid);
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
    err = (c->pidfd < 0 ? errno : EIO) | SETUP_FAILED;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (c->pidfd >= 0) close(c->pidfd);
    free(c);
    for (int i = 0; i < nfds; i++)
      if (parent[i] >= 0) close(parent[i]);
    return int_value(env, -err);
  }
  c->poll.data = c;
  napi_create_reference(env, a[6], 1, &c->on_exit);
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

static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
#ifdef __GLIBC__
  return int_value(env, malloc_trim(0));
#else
  return int_value(env, 0);
#endif
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, Spawn, NULL, &fn);
  napi_set_named_property(env, exports, "spawn", fn);
  napi_create_function(env, "usable", NAPI_AUTO_LENGTH, Usable, NULL, &fn);
  napi_set_named_property(env, exports, "usable", fn);
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  return exports;
}
