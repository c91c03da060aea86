/*
 * nsholder: creates namespaces for the nsctl benchmark and keeps them alive
 * until its stdin reaches EOF.  Built and driven by bench/topology.py.
 *
 *   nsholder MODE TAG PARENT_PID COUNT [DIR]
 *
 * MODE says what holds the namespaces it creates (about COUNT of them, in
 * units of one namespace of each type the mode can hold):
 *   proc      light processes: per unit a process C that unshare()s all 8
 *             types and its child G, PID 1 of the new PID namespace, so every
 *             namespace has a process inside it (8 per unit).
 *   fd        this process keeps them open as fds: per unit it unshare()s
 *             uts|ipc|cgroup|net|mnt itself and opens /proc/self/ns/...,
 *             and takes user, pid and time from a short-lived child; one unit
 *             in 8 nests its user namespace, so the outer one is held by
 *             nothing but its child namespace ("child").
 *   bind      bind mounts in a private mount namespace that only this process
 *             is in (a tmpfs on DIR, gone with the namespace): 8 per unit.
 *   initbind  bind mounts on files in DIR in the caller's mount namespace
 *             (uts, ipc, cgroup, net, user: 5 per unit); unmounted at EOF.
 *
 * Output (stdout, one record per line), then "ready":
 *   ns TYPE INODE HOLDER       a namespace it created
 *   pid PID                    a process it started that stays alive
 *   mount PATH                 a bind mount it made (initbind)
 * Errors go to stderr with exit status 1.
 *
 * Safety: every process it starts is named TAG (comm), dies with its parent
 * (PR_SET_PDEATHSIG) and checks that the parent is still the expected one
 * after arming it; this process is a child subreaper and reaps every
 * descendant before it exits, so when it has exited nothing it started is left.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#define NS_GET_PARENT _IO(0xb7, 0x2)

#define ALL8 (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | \
              CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWTIME)
#define SELF_FD (CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | CLONE_NEWNET | CLONE_NEWNS)
#define SELF_BIND (CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | CLONE_NEWNET)

/* /proc/PID/ns link name -> type as reported */
struct link { const char *link, *type; };
static const struct link ALL_LINKS[] = {
    {"user", "user"}, {"mnt", "mnt"}, {"uts", "uts"}, {"ipc", "ipc"}, {"cgroup", "cgroup"},
    {"net", "net"}, {"pid", "pid"}, {"time", "time"},
};
static const struct link SELF_FD_LINKS[] = {
    {"uts", "uts"}, {"ipc", "ipc"}, {"cgroup", "cgroup"}, {"net", "net"}, {"mnt", "mnt"},
};
static const struct link SELF_BIND_LINKS[] = {
    {"uts", "uts"}, {"ipc", "ipc"}, {"cgroup", "cgroup"}, {"net", "net"},
};
static const struct link CHILD_FD_LINKS[] = {
    {"user", "user"}, {"pid_for_children", "pid"}, {"time_for_children", "time"},
};
static const struct link CHILD_BIND_LINKS[] = {
    {"user", "user"}, {"mnt", "mnt"}, {"pid_for_children", "pid"}, {"time_for_children", "time"},
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *tag = "nsholder";
static pid_t *kids;          /* processes that stay alive (reported as "pid") */
static size_t nkids, capkids;

static void die(const char *what)
{
    fprintf(stderr, "nsholder: %s: %s\n", what, strerror(errno));
    exit(1);   /* the parent-death signal and the subreaper take care of children */
}

/* In a forked child: no stdio flush of the parent's buffers, just leave. */
static void child_die(int fd, const char *what)
{
    char buf[128];
    int n = snprintf(buf, sizeof buf, "err %d %s\n", errno, what);
    if (fd >= 0 && write(fd, buf, n) < 0) { /* nothing more to do */ }
    _exit(1);
}

static void add_kid(pid_t pid)
{
    if (nkids == capkids) {
        capkids = capkids ? capkids * 2 : 256;
        kids = realloc(kids, capkids * sizeof *kids);
        if (!kids) die("realloc");
    }
    kids[nkids++] = pid;
}

/* Name the process, arm the parent-death signal, and make sure the parent did
 * not die before it was armed. */
static void guard(pid_t expected_parent)
{
    prctl(PR_SET_NAME, tag, 0, 0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) _exit(1);
    if (expected_parent && getppid() != expected_parent) _exit(1);
}

static unsigned long link_ino(pid_t pid, const char *link)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, link);
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0) die(path);
    buf[n] = 0;
    char *br = strchr(buf, '[');
    if (!br) { errno = EINVAL; die(path); }
    return strtoul(br + 1, NULL, 10);
}

static int open_ns(pid_t pid, const char *link)
{
    char path[64];
    if (pid) snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, link);
    else snprintf(path, sizeof path, "/proc/self/ns/%s", link);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(path);
    return fd;
}

static unsigned long fd_ino(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0) die("fstat");
    return (unsigned long)st.st_ino;
}

/* Read one "ok PID..." / "err ..." line from a pipe shared by many writers
 * (each line is written with one write(), well under PIPE_BUF: atomic). */
static char rbuf[1 << 16];
static size_t rlen;
static char *read_line(int fd)
{
    static char line[256];
    for (;;) {
        char *nl = memchr(rbuf, '\n', rlen);
        if (nl) {
            size_t n = nl - rbuf + 1;
            memcpy(line, rbuf, n < sizeof line ? n : sizeof line - 1);
            line[(n < sizeof line ? n : sizeof line - 1) - 1] = 0;
            memmove(rbuf, rbuf + n, rlen - n);
            rlen -= n;
            return line;
        }
        ssize_t r = read(fd, rbuf + rlen, sizeof rbuf - rlen);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { errno = r ? errno : EPIPE; die("read from children"); }
        rlen += r;
    }
}

static pid_t expect_ok(int fd)
{
    char *line = read_line(fd);
    if (strncmp(line, "ok ", 3) != 0) {
        fprintf(stderr, "nsholder: child failed: %s\n", line);
        exit(1);
    }
    return (pid_t)atoi(line + 3);
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* A child that unshare()s FLAGS (after a lone CLONE_NEWUSER first if NEST),
 * reports "ok PID" on fd W and waits to be killed. */
static pid_t spawn_waiter(int w, int flags, int nest)
{
    pid_t me = getpid();
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        guard(me);
        if (nest) {
            /* A user namespace can only be created by a uid mapped in the
             * current one: map root to root in the outer one first. */
            if (unshare(CLONE_NEWUSER) < 0) child_die(w, "unshare(user)");
            if (write_file("/proc/self/setgroups", "deny") < 0 ||
                write_file("/proc/self/uid_map", "0 0 1") < 0 ||
                write_file("/proc/self/gid_map", "0 0 1") < 0) child_die(w, "id maps");
        }
        if (unshare(flags) < 0) child_die(w, "unshare");
        if (flags & CLONE_NEWPID) {
            /* A PID namespace can be opened only once it has had an init
             * (child_reaper): start one that exits at once. */
            pid_t init = fork();
            if (init < 0) child_die(w, "fork");
            if (init == 0) _exit(0);
            while (waitpid(init, NULL, 0) < 0 && errno == EINTR) {}
        }
        char buf[32];
        int n = snprintf(buf, sizeof buf, "ok %d\n", (int)getpid());
        if (write(w, buf, n) != n) _exit(1);
        for (;;) pause();
    }
    return pid;
}

static void kill_and_reap(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
}

static void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) die("getrlimit");
    rl.rlim_cur = rl.rlim_max;
    if (rl.rlim_max < want) {     /* as root the hard limit can go up to fs.nr_open */
        struct rlimit up = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) return;
    }
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit");
    if (rl.rlim_cur < want) {
        fprintf(stderr, "nsholder: RLIMIT_NOFILE %lu < %lu needed\n",
                (unsigned long)rl.rlim_cur, (unsigned long)want);
        exit(1);
    }
}

/* ---- proc: every namespace has processes in it ------------------------- */
static void mode_proc(long units)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) die("pipe");
    pid_t me = getpid();
    for (long u = 0; u < units; u++) {
        pid_t c = fork();
        if (c < 0) die("fork");
        if (c) continue;
        /* C: unshare everything, start G inside, report "ok C G". */
        close(p[0]);
        guard(me);
        if (unshare(ALL8) < 0) child_die(p[1], "unshare(all 8)");
        int alive[2], ready[2];   /* alive: G sees C's death as EOF; ready: G -> C */
        if (pipe2(alive, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0) child_die(p[1], "pipe");
        pid_t g = fork();
        if (g < 0) child_die(p[1], "fork");
        if (g == 0) {
            close(alive[1]);
            close(ready[0]);
            guard(0);   /* getppid() is 0 in a new PID namespace: check through the pipe */
            struct pollfd pf = {alive[0], POLLIN, 0};
            if (poll(&pf, 1, 0) != 0) _exit(1);   /* C already gone */
            if (write(ready[1], "r", 1) != 1) _exit(1);
            for (;;) pause();
        }
        close(alive[0]);
        close(ready[1]);
        char b;
        if (read(ready[0], &b, 1) != 1) child_die(p[1], "child G");
        char buf[48];
        int n = snprintf(buf, sizeof buf, "ok %d %d\n", (int)getpid(), (int)g);
        if (write(p[1], buf, n) != n) _exit(1);
        for (;;) pause();
    }
    for (long u = 0; u < units; u++) {
        char *line = read_line(p[0]);
        int c, g;
        if (sscanf(line, "ok %d %d", &c, &g) != 2) {
            fprintf(stderr, "nsholder: child failed: %s\n", line);
            exit(1);
        }
        add_kid(c);
        add_kid(g);
        for (size_t i = 0; i < NELEM(ALL_LINKS); i++)
            printf("ns %s %lu process\n", ALL_LINKS[i].type, link_ino(g, ALL_LINKS[i].link));
    }
    close(p[0]);
    close(p[1]);
}

/* ---- fd: one process keeps them open ----------------------------------- */
static void mode_fd(long units)
{
    raise_nofile((rlim_t)units * 8 + 64);
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) die("pipe");
    const long batch = 64;
    for (long u0 = 0; u0 < units; u0 += batch) {
        long nb = units - u0 < batch ? units - u0 : batch;
        pid_t pids[64];
        for (long i = 0; i < nb; i++)
            pids[i] = spawn_waiter(p[1], CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWTIME,
                                   (u0 + i) % 8 == 0);
        for (long i = 0; i < nb; i++) {
            /* namespaces of this process, replaced by the next unshare */
            if (unshare(SELF_FD) < 0) die("unshare(uts|ipc|cgroup|net|mnt)");
            for (size_t k = 0; k < NELEM(SELF_FD_LINKS); k++)
                printf("ns %s %lu fd\n", SELF_FD_LINKS[k].type,
                       fd_ino(open_ns(0, SELF_FD_LINKS[k].link)));
        }
        for (long n = 0; n < nb; n++) {
            pid_t k = expect_ok(p[0]);   /* children answer in any order */
            long i = 0;
            while (i < nb && pids[i] != k) i++;
            if (i == nb) { errno = EPROTO; die("unknown child"); }
            for (size_t j = 0; j < NELEM(CHILD_FD_LINKS); j++) {
                int fd = open_ns(k, CHILD_FD_LINKS[j].link);
                printf("ns %s %lu fd\n", CHILD_FD_LINKS[j].type, fd_ino(fd));
                if (j == 0 && (u0 + i) % 8 == 0) {   /* nested: the outer user ns is hidden */
                    int parent = ioctl(fd, NS_GET_PARENT);
                    if (parent < 0) die("NS_GET_PARENT");
                    printf("ns user %lu child\n", fd_ino(parent));
                    close(parent);
                }
            }
        }
        for (long i = 0; i < nb; i++) kill_and_reap(pids[i]);
    }
    close(p[0]);
    close(p[1]);
}

/* ---- bind mounts ------------------------------------------------------- */
static char **mounts;        /* initbind: what to unmount at EOF */
static size_t nmounts;

static void bind_ns(const char *dir, const char *type, long unit, pid_t pid, const char *link,
                    const char *holder, int keep)
{
    char src[64], dst[4096];
    if (pid) snprintf(src, sizeof src, "/proc/%d/ns/%s", (int)pid, link);
    else snprintf(src, sizeof src, "/proc/self/ns/%s", link);
    snprintf(dst, sizeof dst, "%s/%s-%ld", dir, type, unit);
    int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) die(dst);
    close(fd);
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0) {
        fprintf(stderr, "nsholder: mount --bind %s %s: %s\n", src, dst, strerror(errno));
        exit(1);
    }
    struct stat st;
    if (stat(dst, &st) < 0) die(dst);
    printf("ns %s %lu %s\n", type, (unsigned long)st.st_ino, holder);
    if (keep) {
        printf("mount %s\n", dst);
        if (!(mounts[nmounts++] = strdup(dst))) die("strdup");
    }
}

static void mode_bind(long units, const char *dir)
{
    /* A mount namespace file can be bind-mounted only into an older mount
     * namespace (mnt_ns_loop() compares namespace ids), and on 6.18 ids come
     * from per-CPU batches: one made later on another CPU can have a smaller
     * id.  Staying on one CPU while creating keeps them in creation order. */
    cpu_set_t saved, one;
    if (sched_getaffinity(0, sizeof saved, &saved) < 0) die("sched_getaffinity");
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    if (sched_setaffinity(0, sizeof one, &one) < 0) die("sched_setaffinity");

    if (unshare(CLONE_NEWNS) < 0) die("unshare(mnt)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make-rprivate /");
    if (mount("nsbench", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0)
        die("mount tmpfs");
    /* The children unshare their mount namespace before any bind mount exists,
     * so their copies of the mount table stay small. */
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) die("pipe");
    pid_t *pids = calloc(units, sizeof *pids);
    if (!pids) die("calloc");
    for (long u = 0; u < units; u++)
        spawn_waiter(p[1], CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWTIME, 0);
    for (long u = 0; u < units; u++) pids[u] = expect_ok(p[0]);
    for (long u = 0; u < units; u++) {
        if (unshare(SELF_BIND) < 0) die("unshare(uts|ipc|cgroup|net)");
        for (size_t k = 0; k < NELEM(SELF_BIND_LINKS); k++)
            bind_ns(dir, SELF_BIND_LINKS[k].type, u, 0, SELF_BIND_LINKS[k].link, "bindmount", 0);
        for (size_t k = 0; k < NELEM(CHILD_BIND_LINKS); k++)
            bind_ns(dir, CHILD_BIND_LINKS[k].type, u, pids[u], CHILD_BIND_LINKS[k].link,
                    "bindmount", 0);
    }
    for (long u = 0; u < units; u++) kill_and_reap(pids[u]);
    free(pids);
    sched_setaffinity(0, sizeof saved, &saved);
    close(p[0]);
    close(p[1]);
}

static void mode_initbind(long units, const char *dir)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) die("pipe");
    if (!(mounts = calloc(units * 5, sizeof *mounts))) die("calloc");
    for (long u = 0; u < units; u++) {
        pid_t k = spawn_waiter(p[1], CLONE_NEWUSER, 0);
        if (expect_ok(p[0]) != k) { errno = EPROTO; die("child"); }
        if (unshare(SELF_BIND) < 0) die("unshare(uts|ipc|cgroup|net)");
        for (size_t j = 0; j < NELEM(SELF_BIND_LINKS); j++)
            bind_ns(dir, SELF_BIND_LINKS[j].type, u, 0, SELF_BIND_LINKS[j].link,
                    "bindmount-init", 1);
        bind_ns(dir, "user", u, k, "user", "bindmount-init", 1);
        kill_and_reap(k);
    }
    close(p[0]);
    close(p[1]);
}

static void unmount_all(void)
{
    for (size_t i = 0; i < nmounts; i++) {
        umount2(mounts[i], MNT_DETACH);
        unlink(mounts[i]);
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: nsholder proc|fd|bind|initbind TAG PARENT_PID COUNT [DIR]\n");
        return 2;
    }
    const char *mode = argv[1];
    tag = argv[2];
    pid_t parent = (pid_t)atoi(argv[3]);
    long count = atol(argv[4]);
    const char *dir = argc > 5 ? argv[5] : NULL;
    guard(0);
    if (parent && getppid() != parent) {
        fprintf(stderr, "nsholder: parent is not %d: it died or PARENT_PID is wrong\n", (int)parent);
        return 1;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) die("PR_SET_CHILD_SUBREAPER");

    if (!strcmp(mode, "proc")) mode_proc((count + 7) / 8);
    else if (!strcmp(mode, "fd")) mode_fd((count + 7) / 8);
    else if (!strcmp(mode, "bind") && dir) mode_bind((count + 7) / 8, dir);
    else if (!strcmp(mode, "initbind") && dir) mode_initbind((count + 4) / 5, dir);
    else { fprintf(stderr, "nsholder: bad mode or missing DIR\n"); return 2; }

    for (size_t i = 0; i < nkids; i++) printf("pid %d\n", (int)kids[i]);
    printf("ready\n");
    fflush(stdout);

    /* Hold until the driver closes our stdin (or dies: then PDEATHSIG). */
    char buf[256];
    for (;;) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EINTR)) break;
    }
    unmount_all();
    for (size_t i = 0; i < nkids; i++) kill(kids[i], SIGKILL);
    /* We are a subreaper: grandchildren whose parent died come to us too. */
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
    return 0;
}
