/*
 * timeit: run a command and report its wall time and peak RSS.
 *
 *   timeit RESULT_FD PROGRAM [ARG...]
 *
 * The command inherits stdin, stdout and stderr; when it has been reaped,
 * "WALL_NS MAXRSS_KIB WAIT_STATUS CPU_US\n" is written to RESULT_FD (CPU_US:
 * user + system time of the command and the children it waited for).
 *
 * Why not wait4() straight from Python: exec records the old address space's
 * high-water RSS in the process's maxrss, and a child spawned (or forked) by
 * the Python driver starts out with the driver's address space, so every
 * tool would report at least the driver's RSS.  This launcher is small, so
 * the command's ru_maxrss is its own.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: timeit RESULT_FD PROGRAM [ARG...]\n");
        return 2;
    }
    int rfd = atoi(argv[1]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) { perror("timeit: fork"); return 1; }
    if (pid == 0) {
        close(rfd);
        execv(argv[2], argv + 2);
        perror("timeit: exec");
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) { perror("timeit: wait4"); return 1; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    long long cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL
                    + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    dprintf(rfd, "%lld %ld %d %lld\n", ns, ru.ru_maxrss, status, cpu);
    return 0;
}
