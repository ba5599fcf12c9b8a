/*
 * plugvisor-spawner: the small process that starts plugins for the daemon and holds them.
 *
 * Forking a 100 MB Node process copies its page tables on every spawn; forking this one costs
 * almost nothing, and the daemon then carries one pipe instead of two per plugin. The daemon
 * starts it once, writes requests to its stdin and reads events from its stdout.
 *
 * Every frame, both ways: u32 length of what follows, u8 type, u32 id (the daemon's number
 * for one spawn), then the type's payload. Integers are in this machine's byte order: both ends
 * always run on the same machine.
 *
 *   daemon -> spawner
 *     SPAWN   u32 argc, u32 envc, then NUL-terminated strings: file, cwd, argv[argc], env[envc]
 *     SIGNAL  (id 0) pairs of i32 target (a negative number: a process group) and i32 signal,
 *             sent in order with kill(2): the daemon's signals of one turn in one frame
 *   spawner -> daemon
 *     SPAWNED i32 pid, u64 start time (clock ticks after boot, /proc/<pid>/stat field 22; 0 unknown)
 *     FAILED  i32 errno of the failed chdir or exec
 *     OUTPUT  u8 stream (1 stdout, 2 stderr), then the bytes read
 *     CLOSED  u8 stream: the stream reached its end
 *     EXITED  i32 wait status of the leader (reaped), i32 1 when processes of its group were left
 *             at the reaping, 0 when none were (a group with no process can never get one again)
 *
 * Each plugin runs as the daemon's child_process.spawn runs it (detached, stdin /dev/null,
 * stdout and stderr piped): its own session and process group, the given environment and
 * working folder, the program found on the environment's PATH, signals at their defaults.
 * A spawn is answered once its exec worked or failed, without holding up the next one (its
 * fork is done; the exec runs on the other core). A plugin's output comes after its SPAWNED
 * frame, and what it printed before it was reaped comes before its EXITED frame.
 *
 * When its stdin ends (the daemon exited, cleanly or not) the spawner exits at once and leaves
 * the plugins alone, as a daemon that dies leaves its children: the next daemon finds them by
 * their recorded group or their instance marker and stops them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { SPAWN = 1, SIGNAL = 2 };
enum { SPAWNED = 1, FAILED = 2, OUTPUT = 3, CLOSED = 4, EXITED = 5 };

#define READ_CHUNK 32768
#define MAX_REQUEST (64u << 20)

struct child {
  uint32_t id;
  pid_t pid;              /* 0 once reaped */
  int fd[2];              /* read ends of stdout, stderr; -1 once closed */
  int status;             /* read end of the exec status pipe until exec is known to have worked or failed; -1 then */
  int reaped;             /* waitpid returned it (its status is in wait_status) */
  int wait_status;
  uint64_t start_ticks;   /* read right after fork, while it cannot have been reaped */
  struct child *next;
};

static struct child *children;
static int epfd;
static char chunk[READ_CHUNK];

static void die (const char *what) {
  fprintf(stderr, "plugvisor-spawner: %s: %s\n", what, strerror(errno));
  exit(70);
}

/* Writes the whole of iov to the daemon (stdout, blocking). The daemon gone: nothing left to do. */
static void send_all (struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(1, iov, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      exit(errno == EPIPE ? 0 : 71);
    }
    while (n > 0 && (size_t)w >= iov->iov_len) { w -= (ssize_t)iov->iov_len; iov++; n--; }
    if (n > 0) { iov->iov_base = (char *)iov->iov_base + w; iov->iov_len -= (size_t)w; }
  }
}

/*
 * Frames wait here until the end of the event loop's turn (or until the next one would not fit):
 * 500 plugins printing a line each make one write to the daemon, not 500.
 */
static unsigned char obuf[1 << 16];
static size_t olen;

static void flush (void) {
  if (olen == 0) return;
  struct iovec iov = { obuf, olen };
  olen = 0;
  send_all(&iov, 1);
}

static void send_frame (uint8_t type, uint32_t id, const void *a, size_t alen, const void *b, size_t blen) {
  unsigned char head[9];
  uint32_t len = (uint32_t)(5 + alen + blen);
  memcpy(head, &len, 4);
  head[4] = type;
  memcpy(head + 5, &id, 4);
  size_t whole = 9 + alen + blen;
  if (olen + whole > sizeof obuf) flush();
  if (whole > sizeof obuf) {
    struct iovec iov[3] = { { head, 9 }, { (void *)a, alen }, { (void *)b, blen } };
    send_all(iov, blen > 0 ? 3 : alen > 0 ? 2 : 1);
    return;
  }
  memcpy(obuf + olen, head, 9);
  if (alen > 0) memcpy(obuf + olen + 9, a, alen);
  if (blen > 0) memcpy(obuf + olen + 9 + alen, b, blen);
  olen += whole;
}

/* Reads exactly n bytes from the daemon; exits when its end is closed. */
static void read_exact (void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(0, p, n);
    if (r == 0) exit(0);
    if (r < 0) {
      if (errno == EINTR) continue;
      exit(errno == ECONNRESET ? 0 : 72);
    }
    p += r;
    n -= (size_t)r;
  }
}

/* Field 22 of /proc/<pid>/stat: the start time in clock ticks after boot; 0 when unreadable. */
static uint64_t start_ticks (pid_t pid) {
  char path[32], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
  if (p == NULL) return 0;
  p += 2; /* field 3, the state */
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (p == NULL) return 0;
    p++;
  }
  return strtoull(p, NULL, 10);
}

static void watch (int fd, struct child *c, int stream) {
  struct epoll_event ev = { .events = EPOLLIN };
  /* The child and which of its streams, packed into the event's 64 bits. */
  ev.data.u64 = ((uint64_t)c->id << 8) | (uint64_t)stream;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
}

static struct child *find_id (uint32_t id) {
  for (struct child *c = children; c != NULL; c = c->next) if (c->id == id) return c;
  return NULL;
}

static void forget_if_done (struct child *c) {
  if (c->pid != 0 || c->status >= 0 || c->fd[0] >= 0 || c->fd[1] >= 0) return;
  for (struct child **p = &children; *p != NULL; p = &(*p)->next) {
    if (*p == c) { *p = c->next; free(c); return; }
  }
}

/* Forwards what one stream has ready; `all`: until the pipe is empty. Sends CLOSED at its end. */
static void drain (struct child *c, int stream, int all) {
  int fd = c->fd[stream - 1];
  while (fd >= 0) {
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r > 0) {
      uint8_t s = (uint8_t)stream;
      send_frame(OUTPUT, c->id, &s, 1, chunk, (size_t)r);
      /* One read per readiness: a plugin that prints without pause cannot hold up the others,
       * the spawns and the reaping (epoll reports its pipe again). */
      if (!all) return;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    /* End of the stream (or an error that ends it). */
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    c->fd[stream - 1] = -1;
    uint8_t s = (uint8_t)stream;
    send_frame(CLOSED, c->id, &s, 1, NULL, 0);
    return;
  }
}

/* The leader is reaped and its exec was reported: what it printed, then EXITED. */
static void exited (struct child *c) {
  drain(c, 1, 1);
  drain(c, 2, 1);
  /* The daemon waits for the whole group before it reports the exit: when nothing of it is
   * left, it need not ask (a stop of 500 asked 500 times, with a JavaScript error each). */
  int32_t body[2] = { c->wait_status, kill(-c->pid, 0) == 0 || errno == EPERM };
  c->pid = 0;
  send_frame(EXITED, c->id, body, sizeof body, NULL, 0);
  forget_if_done(c);
}

/*
 * The exec status pipe is readable: closed by a successful exec (SPAWNED, and its output is
 * read from now on, so no output comes before SPAWNED), or the errno of a failed chdir or exec
 * (FAILED; the child exits at once).
 */
static void exec_done (struct child *c) {
  int e = 0;
  ssize_t r;
  while ((r = read(c->status, &e, sizeof e)) < 0 && errno == EINTR) {}
  if (r < 0 && errno == EAGAIN) return;
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->status, NULL);
  close(c->status);
  c->status = -1;
  if (r > 0) {
    if (!c->reaped) while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR) {}
    close(c->fd[0]);
    close(c->fd[1]);
    c->fd[0] = c->fd[1] = -1;
    c->pid = 0;
    int32_t e32 = e;
    send_frame(FAILED, c->id, &e32, 4, NULL, 0);
    forget_if_done(c);
    return;
  }
  watch(c->fd[0], c, 1);
  watch(c->fd[1], c, 2);
  unsigned char body[12];
  int32_t p32 = c->pid;
  memcpy(body, &p32, 4);
  memcpy(body + 4, &c->start_ticks, 8);
  send_frame(SPAWNED, c->id, body, 12, NULL, 0);
  if (c->reaped) exited(c);
}

static void reap (void) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (struct child *c = children; c != NULL; c = c->next) {
      if (c->pid != pid) continue;
      c->reaped = 1;
      c->wait_status = status;
      /* Exited before its exec was reported: the status pipe is closed by now, and says which. */
      if (c->status >= 0) exec_done(c);
      else exited(c);
      break;
    }
  }
}

/* What the new process does between fork and exec; on failure the errno goes up `err`. */
static void become (int out, int errfd, int err, const char *file, const char *cwd, char **argv, char **envp) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* Every disposition back to its default, as the daemon's own spawns do: an ignored SIGPIPE
   * or SIGTERM of the spawner's must not reach the plugin through exec. */
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
  setsid();
  int null = open("/dev/null", O_RDONLY);
  if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0) goto fail;
  if (null > 2) close(null);
  if (cwd[0] != 0 && chdir(cwd) < 0) goto fail;
  environ = envp;
  execvp(file, argv);
fail:;
  int e = errno;
  while (write(err, &e, sizeof e) < 0 && errno == EINTR) {}
  _exit(127);
}

static void spawn_one (uint32_t id, char *payload, uint32_t len) {
  if (len < 8) { int32_t e = EINVAL; send_frame(FAILED, id, &e, 4, NULL, 0); return; }
  uint32_t argc, envc;
  memcpy(&argc, payload, 4);
  memcpy(&envc, payload + 4, 4);
  /* file, cwd, argv..., env...: each NUL-terminated, all within the payload. */
  size_t want = 2 + (size_t)argc + envc;
  if (want > len) { int32_t e = EINVAL; send_frame(FAILED, id, &e, 4, NULL, 0); return; }
  char **strs = calloc(want + 2, sizeof(char *));
  if (strs == NULL) die("calloc");
  char *p = payload + 8, *end = payload + len;
  for (size_t i = 0; i < want; i++) {
    char *nul = p < end ? memchr(p, 0, (size_t)(end - p)) : NULL;
    if (nul == NULL) { free(strs); int32_t e = EINVAL; send_frame(FAILED, id, &e, 4, NULL, 0); return; }
    strs[i] = p;
    p = nul + 1;
  }
  const char *file = strs[0], *cwd = strs[1];
  char **argv = strs + 2;
  /* argv ends with NULL: shift env up one slot to make room. */
  memmove(strs + 2 + argc + 1, strs + 2 + argc, envc * sizeof(char *));
  argv[argc] = NULL;
  char **envp = strs + 2 + argc + 1;
  envp[envc] = NULL;

  int out[2], errp[2], status[2];
  if (pipe2(out, O_CLOEXEC) < 0) die("pipe2");
  if (pipe2(errp, O_CLOEXEC) < 0) die("pipe2");
  if (pipe2(status, O_CLOEXEC) < 0) die("pipe2");
  pid_t pid = fork();
  if (pid < 0) {
    int32_t e = errno;
    close(out[0]); close(out[1]); close(errp[0]); close(errp[1]); close(status[0]); close(status[1]);
    free(strs);
    send_frame(FAILED, id, &e, 4, NULL, 0);
    return;
  }
  if (pid == 0) become(out[1], errp[1], status[1], file, cwd, argv, envp);
  free(strs);
  close(out[1]);
  close(errp[1]);
  close(status[1]);
  /* Whether exec worked is read when the status pipe says so: the next spawn does not wait. */
  struct child *c = calloc(1, sizeof *c);
  if (c == NULL) die("calloc");
  c->id = id;
  c->pid = pid;
  c->fd[0] = out[0];
  c->fd[1] = errp[0];
  c->status = status[0];
  c->start_ticks = start_ticks(pid);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(errp[0], F_SETFL, O_NONBLOCK);
  fcntl(status[0], F_SETFL, O_NONBLOCK);
  c->next = children;
  children = c;
  watch(status[0], c, 3);
}

static void handle_request (void) {
  uint32_t len;
  read_exact(&len, 4);
  if (len < 5 || len > MAX_REQUEST) { errno = EPROTO; die("request length"); }
  char *buf = malloc(len);
  if (buf == NULL) die("malloc");
  read_exact(buf, len);
  uint32_t id;
  memcpy(&id, buf + 1, 4);
  if ((uint8_t)buf[0] == SPAWN) spawn_one(id, buf + 5, len - 5);
  else if ((uint8_t)buf[0] == SIGNAL) {
    for (uint32_t at = 5; at + 8 <= len; at += 8) {
      int32_t target, sig;
      memcpy(&target, buf + at, 4);
      memcpy(&sig, buf + at + 4, 4);
      kill(target, sig);
    }
  }
  else { errno = EPROTO; die("request type"); }
  free(buf);
}

int main (void) {
  signal(SIGPIPE, SIG_IGN);
  /* Its life is its daemon's: it ends when its stdin ends. A Ctrl-C in the daemon's terminal or a
   * SIGTERM to the daemon's process group reaches the spawner too; the daemon decides what its
   * plugins get and still needs the spawner to see them exit. */
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0) die("sigprocmask");
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die("signalfd");
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  fcntl(0, F_SETFD, FD_CLOEXEC);
  fcntl(1, F_SETFD, FD_CLOEXEC);
  /* Room for a burst of output while the daemon is busy (the system's limit caps it). */
  fcntl(1, F_SETPIPE_SZ, 1 << 20);
  struct epoll_event ev = { .events = EPOLLIN };
  ev.data.u64 = UINT64_MAX;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) < 0) die("epoll_ctl");
  ev.data.u64 = UINT64_MAX - 1;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev) < 0) die("epoll_ctl");

  struct epoll_event events[64];
  for (;;) {
    flush();
    int n = epoll_wait(epfd, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    int reaping = 0;
    for (int i = 0; i < n; i++) {
      uint64_t key = events[i].data.u64;
      if (key == UINT64_MAX) {
        handle_request();
      } else if (key == UINT64_MAX - 1) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) > 0) {}
        reaping = 1;
      } else {
        struct child *c = find_id((uint32_t)(key >> 8));
        if (c == NULL) continue;
        int which = (int)(key & 0xff);
        if (which == 3) {
          if (c->status >= 0) exec_done(c);
        } else {
          drain(c, which, 0);
          forget_if_done(c);
        }
      }
    }
    if (reaping) reap();
  }
}
