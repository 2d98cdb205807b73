/*
 * launch: run one command, report its wall time and peak RSS.
 *
 * Why not time it from Python: a child forked (or vforked) from the
 * harness starts with the harness's ~20 MB as its ru_maxrss high-water
 * mark, which would hide a small runner's footprint; and Python's spawn
 * cost would land in the wall clock.  This tiny program forks from a
 * small address space and times only fork..wait4.
 *
 * Pinning is done here too (like `taskset -c CPU`, minus taskset's own
 * exec in the timed span): the affinity set before fork is inherited by
 * the runner and by every guest process it starts.
 *
 * usage: launch RESULT_FD CPU COMMAND [ARG...]     (CPU -1 = unpinned)
 * writes "WALL_NS MAXRSS_KB" to RESULT_FD; exits with the command's
 * status (128+N if killed by signal N).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s RESULT_FD CPU COMMAND [ARG...]\n", argv[0]);
        return 125;
    }
    int result_fd = atoi(argv[1]);
    int cpu = atoi(argv[2]);
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            perror("launch: sched_setaffinity");
            return 125;
        }
    }
    long long t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        perror("launch: fork");
        return 125;
    }
    if (pid == 0) {
        close(result_fd);
        execvp(argv[3], argv + 3);
        fprintf(stderr, "launch: exec %s: %s\n", argv[3], strerror(errno));
        _exit(127);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0)
        if (errno != EINTR) {
            perror("launch: wait4");
            return 125;
        }
    long long wall = now_ns() - t0;
    dprintf(result_fd, "%lld %ld\n", wall, ru.ru_maxrss);
    close(result_fd);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}
