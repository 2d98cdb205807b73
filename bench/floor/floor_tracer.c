/*
 * floor_tracer: the cheapest possible seccomp+ptrace supervisor.
 *
 * It has the same shape as sentry's interception (seccomp filter whose
 * default is SECCOMP_RET_TRACE, a few fd-local calls allowed in-kernel,
 * a ptrace tracer following every fork/clone/exec) but does no work at a
 * stop: it just resumes the tracee.  Whatever sentry costs above this is
 * its own overhead; nothing built on seccomp-trace + ptrace can go below.
 *
 * usage: floor_tracer [--allow-file FILE] [--] COMMAND [ARG...]
 *   FILE holds syscall names to allow (one a line, '#' comments);
 *   without it, DEFAULT_ALLOW below is used.
 * Exit status is the first child's (128+N if killed by signal N).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

/* Calls that touch only the caller's own fds/memory/signals: letting
 * them through in-kernel is safe for a sandbox that mediates paths. */
static const char *DEFAULT_ALLOW[] = {
    "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv",
    "pwritev", "lseek", "fstat", "mmap", "munmap", "mprotect", "mremap",
    "brk", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "futex",
    "clock_gettime", "clock_getres", "gettimeofday", "exit_group", "exit",
    "getrandom", "close", "dup", "dup2", "dup3", "fcntl", "poll", "ppoll",
    "select", "pselect6", "pipe", "pipe2", "wait4", "madvise",
    "set_robust_list", "rseq", "prlimit64", "arch_prctl", "set_tid_address",
    "sched_yield", "nanosleep", "clock_nanosleep", "getdents64", "ioctl",
    "sigaltstack", "fsync", "fdatasync", "ftruncate", "epoll_wait",
    "epoll_pwait", "epoll_ctl", NULL,
};

static void die(const char *what)
{
    fprintf(stderr, "floor_tracer: %s: %s\n", what, strerror(errno));
    exit(125);
}

static void allow(scmp_filter_ctx ctx, const char *name)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
        fprintf(stderr, "floor_tracer: unknown syscall '%s' ignored\n", name);
        return;
    }
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0)
        fprintf(stderr, "floor_tracer: cannot allow '%s'\n", name);
}

static void allow_from_file(scmp_filter_ctx ctx, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[128];
    if (!f)
        die(path);
    while (fgets(line, sizeof line, f)) {
        char *name = line + strspn(line, " \t");
        name[strcspn(name, " \t\r\n#")] = '\0';
        if (*name)
            allow(ctx, name);
    }
    fclose(f);
}

static scmp_filter_ctx build_filter(const char *allow_file)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRACE(0));
    if (!ctx)
        die("seccomp_init");
    if (allow_file)
        allow_from_file(ctx, allow_file);
    else
        for (const char **n = DEFAULT_ALLOW; *n; n++)
            allow(ctx, *n);
    return ctx;
}

/* Child: wait until the parent has seized us, so that the very first
 * SECCOMP_RET_TRACE (the execve) already has a tracer and does not fail
 * with ENOSYS. */
static void child(int sync_fd, scmp_filter_ctx ctx, char **cmd)
{
    char b;
    if (read(sync_fd, &b, 1) != 1)
        _exit(125);
    close(sync_fd);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die("no_new_privs");
    if (seccomp_load(ctx) != 0) {
        fprintf(stderr, "floor_tracer: seccomp_load failed\n");
        _exit(125);
    }
    execvp(cmd[0], cmd);
    fprintf(stderr, "floor_tracer: exec %s: %s\n", cmd[0], strerror(errno));
    _exit(127);
}

static int is_group_stop_signal(int sig)
{
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/* Resume every stop, changing nothing; return the first child's status. */
static int trace(pid_t first)
{
    int first_status = 0;
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, __WALL);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECHILD) /* no child and no tracee left */
                return first_status;
            die("waitpid");
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (pid == first)
                first_status = st;
            continue;
        }
        if (!WIFSTOPPED(st))
            continue;
        int sig = WSTOPSIG(st), event = (unsigned)st >> 16, inject = 0;
        if (event == PTRACE_EVENT_STOP && is_group_stop_signal(sig)) {
            /* Group-stop: stay stopped but keep reporting (SIGCONT). */
            ptrace(PTRACE_LISTEN, pid, 0, 0);
            continue;
        }
        if (event == 0)
            inject = sig; /* signal-delivery-stop: deliver it unchanged */
        /* seccomp, fork/clone/exec events and new-tracee stops: resume.
         * ESRCH (tracee killed meanwhile) is harmless, so unchecked. */
        ptrace(PTRACE_CONT, pid, 0, inject);
    }
}

int main(int argc, char **argv)
{
    const char *allow_file = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--allow-file") == 0 && i + 1 < argc) {
            allow_file = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--allow-file FILE] [--] COMMAND [ARG...]\n", argv[0]);
            return 2;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "floor_tracer: no command\n");
        return 2;
    }
    scmp_filter_ctx ctx = build_filter(allow_file);

    int sync[2];
    if (pipe2(sync, O_CLOEXEC) != 0)
        die("pipe2");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(sync[1]);
        child(sync[0], ctx, argv + i);
    }
    close(sync[0]);
    seccomp_release(ctx);

    long opts = PTRACE_O_TRACESECCOMP | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
    if (ptrace(PTRACE_SEIZE, pid, 0, opts) != 0) {
        kill(pid, SIGKILL);
        die("PTRACE_SEIZE");
    }
    if (write(sync[1], "g", 1) != 1)
        die("sync");
    close(sync[1]);

    int st = trace(pid);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}
