/*
 * threads60k: COUNT threads, each unshare(CLONE_NEWUTS)'d into a uts
 * namespace of its own (seed 002's worst case: one namespace per thread).
 *
 *   threads60k TAG PARENT_PID COUNT [STACK_KIB]
 *
 * Prints "ns uts INODE thread" per thread, then "pid PID" and "ready"; holds
 * until stdin reaches EOF, then exits (exit_group ends every thread).  Dies
 * with its parent (PR_SET_PDEATHSIG).
 *
 * All stacks come from one mapping (no guard pages), so 60,000 threads cost
 * one entry against vm.max_map_count instead of 120,000.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/futex.h>

static unsigned long *inos;
static long count;
static atomic_int done;       /* threads that are in their namespace */
static atomic_int failed;     /* errno of the first failure */

static void *worker(void *arg)
{
    long i = (long)arg;
    if (unshare(CLONE_NEWUTS) < 0) {
        int zero = 0;
        atomic_compare_exchange_strong(&failed, &zero, errno);
    } else {
        char buf[64];
        ssize_t n = readlink("/proc/thread-self/ns/uts", buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = 0;
            char *br = strchr(buf, '[');
            inos[i] = br ? strtoul(br + 1, NULL, 10) : 0;
        }
    }
    if (atomic_fetch_add(&done, 1) + 1 == count)
        syscall(SYS_futex, &done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    for (;;) pause();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: threads60k TAG PARENT_PID COUNT [STACK_KIB]\n");
        return 2;
    }
    prctl(PR_SET_NAME, argv[1], 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != (pid_t)atoi(argv[2])) {
        fprintf(stderr, "threads60k: parent is gone\n");
        return 1;
    }
    count = atol(argv[3]);
    size_t stack = (argc > 4 ? (size_t)atol(argv[4]) : 32) * 1024;
    long min = sysconf(_SC_THREAD_STACK_MIN);
    if (min > 0 && stack < (size_t)min) stack = (size_t)min;

    inos = calloc(count, sizeof *inos);
    char *stacks = mmap(NULL, stack * count, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (!inos || stacks == MAP_FAILED) { perror("threads60k: memory"); return 1; }

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (long i = 0; i < count; i++) {
        pthread_attr_setstack(&attr, stacks + i * stack, stack);
        pthread_t t;
        int err = pthread_create(&t, &attr, worker, (void *)i);
        if (err) {
            fprintf(stderr, "threads60k: pthread_create #%ld: %s\n", i, strerror(err));
            return 1;
        }
    }
    for (;;) {
        int d = atomic_load(&done);
        if (d >= count) break;
        syscall(SYS_futex, &done, FUTEX_WAIT_PRIVATE, d, NULL, NULL, 0);
    }
    if (atomic_load(&failed)) {
        fprintf(stderr, "threads60k: unshare(CLONE_NEWUTS): %s\n", strerror(atomic_load(&failed)));
        return 1;
    }
    for (long i = 0; i < count; i++) printf("ns uts %lu thread\n", inos[i]);
    printf("pid %d\nready\n", (int)getpid());
    fflush(stdout);

    char buf[256];
    for (;;) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EINTR)) break;
    }
    _exit(0);
}
