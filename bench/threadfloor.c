/*
 * threadfloor: the kernel's floor for `nsctl ls --threads` on one process.
 *
 *   threadfloor PID WORKERS
 *
 * Lists /proc/PID/task, then WORKERS processes (forked) each take every
 * WORKERS-th thread and make the system calls nsctl's thread scan makes:
 * open TID/ns, readlink mnt, net, uts, ipc and cgroup, and for each link that
 * differs from the process's: open it, fstat, NS_GET_ID, NS_GET_USERNS,
 * fstat the owner, close both.  Nothing is kept; the wall time of listing and
 * of the scan is printed.  Run it beside threads60k.py --hold to compare
 * nsctl's scan with the bare system calls (see README.md).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS_GET_USERNS _IO(0xb7, 1)
#define NS_GET_ID _IOR(0xb7, 13, unsigned long long)

static const char *links[] = {"mnt", "net", "uts", "ipc", "cgroup"};
#define NLINKS 5

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: threadfloor PID WORKERS\n");
        return 2;
    }
    int pid = atoi(argv[1]), workers = atoi(argv[2]);
    char path[64];
    double t0 = now();
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    int task_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = task_fd < 0 ? NULL : fdopendir(dup(task_fd));
    if (dir == NULL) {
        perror(path);
        return 1;
    }
    int n = 0, cap = 1024;
    int *tids = malloc(cap * sizeof *tids);
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap)
            tids = realloc(tids, (cap *= 2) * sizeof *tids);
        tids[n++] = atoi(e->d_name);
    }
    closedir(dir);
    double t1 = now();
    char own[NLINKS][64];
    for (int i = 0; i < NLINKS; i++) {
        snprintf(path, sizeof path, "/proc/%d/ns/%s", pid, links[i]);
        ssize_t len = readlink(path, own[i], sizeof own[i] - 1);
        own[i][len < 0 ? 0 : len] = '\0';
    }
    for (int w = 0; w < workers; w++) {
        if (w < workers - 1 && fork() != 0)
            continue;   /* the parent goes on to fork the next; the last share is its own */
        long learned = 0;
        for (int k = w; k < n; k += workers) {
            snprintf(path, sizeof path, "%d/ns", tids[k]);
            int ns_dir = openat(task_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (ns_dir < 0)
                continue;
            for (int i = 0; i < NLINKS; i++) {
                char text[64];
                ssize_t len = readlinkat(ns_dir, links[i], text, sizeof text - 1);
                if (len < 0)
                    break;
                text[len] = '\0';
                if (strcmp(text, own[i]) == 0)
                    continue;
                int fd = openat(ns_dir, links[i], O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                    continue;
                struct stat st;
                unsigned long long id;
                fstat(fd, &st);
                ioctl(fd, NS_GET_ID, &id);
                int ufd = ioctl(fd, NS_GET_USERNS);
                if (ufd >= 0) {
                    fstat(ufd, &st);
                    close(ufd);
                }
                close(fd);
                learned++;
            }
            close(ns_dir);
        }
        if (w < workers - 1)
            _exit(0);
        while (wait(NULL) > 0)
            ;
        printf("threads %d, workers %d: list %.3f s, scan %.3f s, total %.3f s "
               "(the last share learned %ld namespaces)\n",
               n, workers, t1 - t0, now() - t1, now() - t0, learned);
    }
    return 0;
}
