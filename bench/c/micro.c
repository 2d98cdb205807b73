/*
 * Microbenchmarks, one process for all cases.
 *
 * Timing happens here, inside the guest, so a runner's start-up cost
 * (runsc boot, proot's loader, sentry's import time) never leaks into a
 * per-operation figure.  Each case calibrates its own iteration count
 * against a time budget, because one fixed count cannot suit both native
 * (~100 ns/op) and a ptrace tracer (~10-100 us/op).
 *
 * usage: micro BUDGET_MS REPS TINY_STATIC_BINARY CASE...
 * prints one line per case: "CASE NS_PER_OP ITERATIONS"
 * (NS_PER_OP is the median of REPS timed batches).
 *
 * Where the files are: the plain cases use a scratch directory under /tmp;
 * the *_root cases one the guest makes under $MICRO_ROOT_DIR (default
 * /var/tmp: on sentry's default root, the overlay's upper layer); the
 * *_lower cases read $MICRO_LOWER/file and $MICRO_LOWER/dir, made before
 * the run (on sentry's default root, the overlay's lower layer).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DIR_ENTRIES 1000
#define MAX_REPS 31

struct files {
    char tmp[PATH_MAX - 64]; /* scratch dir made by this process ("" if made before) */
    char file[PATH_MAX];   /* existing regular file for open/stat */
    char bigdir[PATH_MAX]; /* DIR_ENTRIES empty files */
    int dir_fd;
};

struct ctx {
    struct files tmp, root, lower;
    const char *tiny;
    int zero_fd, null_fd;
    int ping[2], pong[2];
    pid_t peer;
    int tcp, listener;          /* tcp_*: a loopback connection to a peer, a listener */
    struct sockaddr_in at;
    int first_timens;           /* clock_gettime_timens: the time namespace to go back to */
    int unavailable;            /* the setup could not make the case's conditions: not timed */
};

static void die(const char *what)
{
    fprintf(stderr, "micro: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- operations: each is one "op" in ns/op ---- */

static void op_getpid(struct ctx *c)
{
    (void)c;
    /* Raw syscall: glibc no longer caches getpid, but be explicit. */
    syscall(SYS_getpid);
}

static void op_uname(struct ctx *c)
{
    struct utsname u;
    (void)c;
    if (uname(&u) != 0)
        die("uname");
}

static void op_read(struct ctx *c)
{
    char b;
    if (read(c->zero_fd, &b, 1) != 1)
        die("read /dev/zero");
}

static void op_write(struct ctx *c)
{
    if (write(c->null_fd, "x", 1) != 1)
        die("write /dev/null");
}

static void open_close(struct files *f)
{
    int fd = open(f->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("open");
    close(fd);
}

static void stat_file(struct files *f)
{
    struct stat st;
    if (stat(f->file, &st) != 0)
        die("stat");
}

static void getdents(struct files *f)
{
    /* A full listing per op; rewinding keeps openat out of the figure. */
    char buf[32768];
    long n, total = 0;
    if (lseek(f->dir_fd, 0, SEEK_SET) != 0)
        die("lseek dir");
    while ((n = syscall(SYS_getdents64, f->dir_fd, buf, sizeof buf)) > 0)
        total += n;
    if (n < 0 || total == 0)
        die("getdents64");
}

static void op_open_close(struct ctx *c) { open_close(&c->tmp); }
static void op_stat(struct ctx *c) { stat_file(&c->tmp); }
static void op_getdents(struct ctx *c) { getdents(&c->tmp); }
static void op_open_close_root(struct ctx *c) { open_close(&c->root); }
static void op_stat_root(struct ctx *c) { stat_file(&c->root); }
static void op_getdents_root(struct ctx *c) { getdents(&c->root); }
static void op_open_close_lower(struct ctx *c) { open_close(&c->lower); }

/* File-creating work (tar -x, builds): a new file made and removed, a new
 * directory made and removed, in the scratch directory. */
static void creat_unlink(struct files *f)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/new", f->tmp);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        die("creat");
    close(fd);
    if (unlink(path) != 0)
        die("unlink");
}

static void mkdir_rmdir(struct files *f)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/newdir", f->tmp);
    if (mkdir(path, 0755) != 0)
        die("mkdir");
    if (rmdir(path) != 0)
        die("rmdir");
}

static void op_creat_unlink(struct ctx *c) { creat_unlink(&c->tmp); }
static void op_mkdir_rmdir(struct ctx *c) { mkdir_rmdir(&c->tmp); }
static void op_creat_unlink_root(struct ctx *c) { creat_unlink(&c->root); }
static void op_mkdir_rmdir_root(struct ctx *c) { mkdir_rmdir(&c->root); }
static void op_stat_lower(struct ctx *c) { stat_file(&c->lower); }
static void op_getdents_lower(struct ctx *c) { getdents(&c->lower); }

static void reap(pid_t pid)
{
    int st;
    if (pid < 0)
        die("fork");
    if (waitpid(pid, &st, 0) != pid)
        die("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "micro: child failed (status 0x%x)\n", st);
        exit(1);
    }
}

static void op_fork_wait(struct ctx *c)
{
    (void)c;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    reap(pid);
}

static void *thread_main(void *arg) { return arg; }

/* glibc's pthread_create: clone3 (sentry: its struct staged, answered in C)
 * and the thread's clone event, then a join */
static void op_thread_create_join(struct ctx *c)
{
    (void)c;
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, NULL) != 0) {
        fprintf(stderr, "micro: pthread_create failed\n");
        exit(1);
    }
}

static void op_fork_exec(struct ctx *c)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)c->tiny, NULL};
        char *envp[] = {NULL};
        execve(c->tiny, argv, envp);
        _exit(127);
    }
    reap(pid);
}

static void op_pingpong(struct ctx *c)
{
    char b = 'p';
    if (write(c->ping[1], &b, 1) != 1 || read(c->pong[0], &b, 1) != 1)
        die("ping-pong");
}

/* ---- fixtures ---- */

/* A scratch directory made under `parent`, holding a file and a directory
 * of DIR_ENTRIES entries; or, when `parent` is NULL, the ones in `made`. */
static void make_files(struct files *f, const char *parent, const char *made)
{
    char path[PATH_MAX + 32];
    if (parent) {
        snprintf(f->tmp, sizeof f->tmp, "%s/sentry-micro-XXXXXX", parent);
        if (!mkdtemp(f->tmp))
            die("mkdtemp");
        made = f->tmp;
    }
    if (strlen(made) > PATH_MAX - 64)
        die("fixture path too long");
    snprintf(f->file, sizeof f->file, "%.4000s/file", made);
    snprintf(f->bigdir, sizeof f->bigdir, "%.4000s/dir", made);
    if (parent) {
        int fd = open(f->file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "hello\n", 6) != 6)
            die("create file");
        close(fd);
        if (mkdir(f->bigdir, 0755) != 0)
            die("mkdir");
        for (int i = 0; i < DIR_ENTRIES; i++) {
            snprintf(path, sizeof path, "%s/entry-%04d", f->bigdir, i);
            fd = open(path, O_WRONLY | O_CREAT, 0644);
            if (fd < 0)
                die("create entry");
            close(fd);
        }
    }
    f->dir_fd = open(f->bigdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dir_fd < 0)
        die("open fixture dir");
}

static void remove_files(struct files *f)
{
    char path[PATH_MAX + 32];
    if (f->dir_fd > 0)
        close(f->dir_fd);
    if (!f->tmp[0])
        return;
    for (int i = 0; i < DIR_ENTRIES; i++) {
        snprintf(path, sizeof path, "%s/entry-%04d", f->bigdir, i);
        unlink(path);
    }
    rmdir(f->bigdir);
    unlink(f->file);
    rmdir(f->tmp);
}

static int wants(int argc, char **argv, const char *suffix)
{
    for (int i = 4; i < argc; i++) {
        size_t n = strlen(argv[i]), k = strlen(suffix);
        if (n >= k && !strcmp(argv[i] + n - k, suffix))
            return 1;
    }
    return 0;
}

static void setup_files(struct ctx *c, int argc, char **argv)
{
    make_files(&c->tmp, "/tmp", NULL);
    if (wants(argc, argv, "_root") || wants(argc, argv, "_root_1000"))
        make_files(&c->root, getenv("MICRO_ROOT_DIR") ? getenv("MICRO_ROOT_DIR") : "/var/tmp", NULL);
    if (wants(argc, argv, "_lower") || wants(argc, argv, "_lower_1000")) {
        if (!getenv("MICRO_LOWER"))
            die("MICRO_LOWER is not set");
        make_files(&c->lower, NULL, getenv("MICRO_LOWER"));
    }
    c->zero_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    c->null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (c->zero_fd < 0 || c->null_fd < 0)
        die("open fixtures");
}

static void teardown_files(struct ctx *c)
{
    remove_files(&c->tmp);
    remove_files(&c->root);
    remove_files(&c->lower);
}

static void setup_peer(struct ctx *c)
{
    if (pipe2(c->ping, O_CLOEXEC) != 0 || pipe2(c->pong, O_CLOEXEC) != 0)
        die("pipe2");
    c->peer = fork();
    if (c->peer < 0)
        die("fork peer");
    if (c->peer == 0) {
        char b;
        close(c->ping[1]);
        close(c->pong[0]);
        while (read(c->ping[0], &b, 1) == 1)
            if (write(c->pong[1], &b, 1) != 1)
                _exit(1);
        _exit(0);
    }
    close(c->ping[0]);
    close(c->pong[1]);
}

static void teardown_peer(struct ctx *c)
{
    close(c->ping[1]); /* EOF tells the peer to exit */
    close(c->pong[0]);
    reap(c->peer);
}

/* kill_probe: a child that waits for its end, signalled with 0 (is it there?) */
static void setup_sleeper(struct ctx *c)
{
    c->peer = fork();
    if (c->peer < 0)
        die("fork sleeper");
    if (c->peer == 0) {
        for (;;)
            pause();
    }
}

static void op_kill_probe(struct ctx *c)
{
    if (kill(c->peer, 0) != 0)
        die("kill");
}

static void teardown_sleeper(struct ctx *c)
{
    kill(c->peer, SIGKILL);
    waitpid(c->peer, NULL, 0);     /* killed: not reap()'s clean exit */
}

/* ---- loopback TCP (the sandbox's own loopback under sentry) ---- */

#define STREAM_CHUNK 65536
static char stream_buf[STREAM_CHUNK];

static void listen_loopback(struct ctx *c)
{
    socklen_t len = sizeof c->at;
    c->at = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    c->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->listener < 0 || bind(c->listener, (void *)&c->at, sizeof c->at) ||
        listen(c->listener, 128) || getsockname(c->listener, (void *)&c->at, &len))
        die("listen on loopback");
}

/* echo = 1: the peer answers each byte; 0: it reads and discards */
static void setup_tcp_peer(struct ctx *c, int echo)
{
    int one = 1;
    listen_loopback(c);
    c->peer = fork();
    if (c->peer < 0)
        die("fork peer");
    if (c->peer == 0) {
        int s = accept(c->listener, NULL, NULL);
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ssize_t n;
        while ((n = read(s, stream_buf, echo ? 1 : STREAM_CHUNK)) > 0)
            if (echo && write(s, stream_buf, n) != n)
                _exit(1);
        _exit(0);
    }
    c->tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(c->tcp, (void *)&c->at, sizeof c->at))
        die("connect on loopback");
    setsockopt(c->tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void setup_tcp_echo(struct ctx *c) { setup_tcp_peer(c, 1); }
static void setup_tcp_sink(struct ctx *c) { setup_tcp_peer(c, 0); }

static void teardown_tcp_peer(struct ctx *c)
{
    close(c->tcp);
    close(c->listener);
    reap(c->peer);
}

static void op_tcp_pingpong(struct ctx *c)
{
    char b = 'p';
    if (write(c->tcp, &b, 1) != 1 || read(c->tcp, &b, 1) != 1)
        die("tcp ping-pong");
}

static void op_tcp_stream(struct ctx *c)
{
    size_t off = 0;
    while (off < STREAM_CHUNK) {
        ssize_t n = write(c->tcp, stream_buf + off, STREAM_CHUNK - off);
        if (n <= 0)
            die("tcp stream");
        off += n;
    }
}

static void setup_listener(struct ctx *c) { listen_loopback(c); }
static void teardown_listener(struct ctx *c) { close(c->listener); }

static void op_tcp_connect(struct ctx *c)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (void *)&c->at, sizeof c->at))
        die("tcp connect");
    int a = accept(c->listener, NULL, NULL);
    if (a < 0)
        die("tcp accept");
    close(a);
    close(s);
}

/* a loopback UDP peer that echoes each datagram; an empty one tells it to exit */
static void setup_udp_echo(struct ctx *c)
{
    socklen_t len = sizeof c->at;
    c->at = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    c->listener = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (c->listener < 0 || bind(c->listener, (void *)&c->at, sizeof c->at) ||
        getsockname(c->listener, (void *)&c->at, &len))
        die("udp on loopback");
    c->peer = fork();
    if (c->peer < 0)
        die("fork peer");
    if (c->peer == 0) {
        struct sockaddr_in from;
        ssize_t n;
        for (;;) {
            len = sizeof from;
            n = recvfrom(c->listener, stream_buf, sizeof stream_buf, 0, (void *)&from, &len);
            if (n <= 0)
                _exit(0);
            if (sendto(c->listener, stream_buf, n, 0, (void *)&from, len) != n)
                _exit(1);
        }
    }
    c->tcp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (connect(c->tcp, (void *)&c->at, sizeof c->at))
        die("connect udp on loopback");
}

static void teardown_udp_echo(struct ctx *c)
{
    send(c->tcp, "", 0, 0);
    close(c->tcp);
    close(c->listener);
    reap(c->peer);
}

static void op_udp_pingpong(struct ctx *c)
{
    char b = 'p';
    if (send(c->tcp, &b, 1, 0) != 1 || recv(c->tcp, &b, 1, 0) != 1)
        die("udp ping-pong");
}

/* ---- clocks: the vDSO's, and in a time namespace with offsets ---- */

static void op_clock_gettime(struct ctx *c)
{
    struct timespec ts;
    (void)c;
    clock_gettime(CLOCK_MONOTONIC, &ts);
}

/* this process enters a new time namespace whose CLOCK_MONOTONIC is shifted
 * (unshare, its offsets, setns into it); back to the first one after */
static void setup_timens(struct ctx *c)
{
    c->first_timens = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
    int fd = -1;
    if (c->first_timens < 0 || unshare(0x80 /* CLONE_NEWTIME */) ||
        (fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC)) < 0 ||
        write(fd, "monotonic 1000 0\n", 17) != 17) {
        fprintf(stderr, "micro: no time namespace here (%s): clock_gettime_timens not timed\n", strerror(errno));
        c->unavailable = 1;
    }
    if (fd >= 0)
        close(fd);
    fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
    if (!c->unavailable && (fd < 0 || setns(fd, 0x80))) {
        fprintf(stderr, "micro: setns into the time namespace: %s\n", strerror(errno));
        c->unavailable = 1;
    }
    if (fd >= 0)
        close(fd);
}

static void teardown_timens(struct ctx *c)
{
    if (c->first_timens >= 0) {
        setns(c->first_timens, 0x80);
        close(c->first_timens);
    }
}

/* ---- harness ---- */

struct bench {
    const char *name;
    void (*op)(struct ctx *);
    void (*setup)(struct ctx *);
    void (*teardown)(struct ctx *);
};

static const struct bench BENCHES[] = {
    {"getpid", op_getpid, NULL, NULL},
    {"uname", op_uname, NULL, NULL},
    {"read_devzero", op_read, NULL, NULL},
    {"write_devnull", op_write, NULL, NULL},
    {"open_close", op_open_close, NULL, NULL},
    {"stat", op_stat, NULL, NULL},
    {"getdents64_1000", op_getdents, NULL, NULL},
    {"open_close_root", op_open_close_root, NULL, NULL},
    {"stat_root", op_stat_root, NULL, NULL},
    {"getdents64_root_1000", op_getdents_root, NULL, NULL},
    {"open_close_lower", op_open_close_lower, NULL, NULL},
    {"stat_lower", op_stat_lower, NULL, NULL},
    {"getdents64_lower_1000", op_getdents_lower, NULL, NULL},
    {"creat_unlink", op_creat_unlink, NULL, NULL},
    {"mkdir_rmdir", op_mkdir_rmdir, NULL, NULL},
    {"creat_unlink_root", op_creat_unlink_root, NULL, NULL},
    {"mkdir_rmdir_root", op_mkdir_rmdir_root, NULL, NULL},
    {"fork_wait", op_fork_wait, NULL, NULL},
    {"thread_create_join", op_thread_create_join, NULL, NULL},
    {"fork_exec_wait", op_fork_exec, NULL, NULL},
    {"pipe_pingpong", op_pingpong, setup_peer, teardown_peer},
    {"kill_probe", op_kill_probe, setup_sleeper, teardown_sleeper},
    {"tcp_pingpong", op_tcp_pingpong, setup_tcp_echo, teardown_tcp_peer},
    {"tcp_stream_64k", op_tcp_stream, setup_tcp_sink, teardown_tcp_peer},
    {"tcp_connect_accept", op_tcp_connect, setup_listener, teardown_listener},
    {"udp_pingpong", op_udp_pingpong, setup_udp_echo, teardown_udp_echo},
    {"clock_gettime", op_clock_gettime, NULL, NULL},
    {"clock_gettime_timens", op_clock_gettime, setup_timens, teardown_timens},
};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double time_batch(const struct bench *b, struct ctx *c, long n)
{
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        b->op(c);
    return now_ns() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void run(const struct bench *b, struct ctx *c, double budget_ns, int reps)
{
    c->unavailable = 0;
    if (b->setup)
        b->setup(c);
    if (c->unavailable) {
        if (b->teardown)
            b->teardown(c);
        return;
    }
    /* Calibrate (also warms caches): grow until a batch is ~5% of budget. */
    long n = 1;
    double t;
    while ((t = time_batch(b, c, n)) < budget_ns / 20 && n < (1L << 40))
        n *= 2;
    long iters = (long)(budget_ns / reps / (t / n));
    if (iters < 1)
        iters = 1;
    double per_op[MAX_REPS];
    for (int r = 0; r < reps; r++)
        per_op[r] = time_batch(b, c, iters) / iters;
    qsort(per_op, reps, sizeof per_op[0], cmp_double);
    printf("%s %.1f %ld\n", b->name, per_op[reps / 2], iters);
    fflush(stdout);
    if (b->teardown)
        b->teardown(c);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s BUDGET_MS REPS TINY CASE...\n", argv[0]);
        return 2;
    }
    double budget_ns = atof(argv[1]) * 1e6;
    int reps = atoi(argv[2]);
    if (reps < 1 || reps > MAX_REPS)
        reps = 3;
    struct ctx c = {.tiny = argv[3]};
    setup_files(&c, argc, argv);
    int status = 0;
    for (int i = 4; i < argc; i++) {
        size_t k;
        for (k = 0; k < sizeof BENCHES / sizeof BENCHES[0]; k++)
            if (strcmp(argv[i], BENCHES[k].name) == 0)
                break;
        if (k == sizeof BENCHES / sizeof BENCHES[0]) {
            fprintf(stderr, "micro: unknown case %s\n", argv[i]);
            status = 2;
            continue;
        }
        run(&BENCHES[k], &c, budget_ns, reps);
    }
    teardown_files(&c);
    return status;
}
