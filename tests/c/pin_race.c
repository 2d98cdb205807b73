/* Races the fd numbers a rewritten call could name.  Two threads keep
 * dup2'ing O_PATH fds of host objects (a host unix socket, a host directory)
 * onto fds 3..6 and closing them again, while the main thread, whose own fds
 * all live at 600 and above, connects to and sends to its own unix sockets
 * and chdirs into its own directory.  Prints a count per outcome; any line in
 * capitals is an escape.
 *
 * usage: pin_race HOST_SOCKET HOST_DGRAM HOST_DIR ROUNDS */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int hostfds[3];
static volatile int stop;

static int high(int fd)
{
    if (fd < 0) { perror("fd"); exit(2); }
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 600);
    if (h < 0) { perror("F_DUPFD"); exit(2); }
    close(fd);
    return h;
}

static void *swap(void *unused)
{
    (void)unused;
    while (!stop)
        for (int n = 3; n < 7; n++)
            for (int i = 0; i < 3; i++)
                if (dup2(hostfds[i], n) == n)
                    close(n);
    return NULL;
}

/* A socket of our own at 600 and above: a racing thread may have closed or
 * replaced the low number it was created at before it moved. */
static int own_socket(int type)
{
    for (;;) {
        int fd = socket(AF_UNIX, type, 0), t = 0;
        socklen_t len = sizeof t;
        if (fd < 0) { perror("socket"); exit(2); }
        int h = fcntl(fd, F_DUPFD_CLOEXEC, 600);
        if (h < 0)
            continue;
        close(fd);
        if (getsockopt(h, SOL_SOCKET, SO_TYPE, &t, &len) == 0 && t == type)
            return h;
        close(h);
    }
}

static struct sockaddr_un addr(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    return a;
}

static struct { const char *what; int n; } seen[32];

static void note(const char *what)
{
    int i;
    for (i = 0; seen[i].what && strcmp(seen[i].what, what); i++)
        ;
    seen[i].what = what;
    seen[i].n++;
}

static int ready(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 3000) == 1;
}

int main(int argc, char **argv)
{
    if (argc != 5) { fprintf(stderr, "usage: pin_race SOCK DGRAM DIR ROUNDS\n"); return 2; }
    int rounds = atoi(argv[4]);
    hostfds[0] = high(open(argv[1], O_PATH));
    hostfds[1] = high(open(argv[2], O_PATH));
    hostfds[2] = high(open(argv[3], O_PATH | O_DIRECTORY));

    mkdir("/tmp/own", 0755);
    struct sockaddr_un own = addr("/tmp/own/s"), owndg = addr("/tmp/own/d");
    unlink(own.sun_path); unlink(owndg.sun_path);
    int lst = own_socket(SOCK_STREAM);
    int dg = own_socket(SOCK_DGRAM);
    if (bind(lst, (void *)&own, sizeof own) || listen(lst, 4096) || bind(dg, (void *)&owndg, sizeof owndg)) {
        perror("bind");
        return 2;
    }
    struct stat want;
    if (stat("/tmp/own", &want)) { perror("stat"); return 2; }

    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, swap, NULL);

    for (int i = 0; i < rounds; i++) {
        int c = own_socket(SOCK_STREAM);
        if (connect(c, (void *)&own, sizeof own) == 0) {
            if (ready(lst)) {
                note("connected");
                close(accept(lst, NULL, NULL));
            } else {
                note("CONNECTED ELSEWHERE");
            }
        } else {
            note(strerror(errno));
        }
        close(c);

        int d = own_socket(SOCK_DGRAM);
        ssize_t r;
        if (i % 2) {
            r = sendto(d, "x", 1, 0, (void *)&owndg, sizeof owndg);
        } else {
            struct iovec iov = { .iov_base = "x", .iov_len = 1 };
            struct msghdr m = { .msg_name = &owndg, .msg_namelen = sizeof owndg, .msg_iov = &iov, .msg_iovlen = 1 };
            r = sendmsg(d, &m, 0);
        }
        if (r == 1) {
            char b[4];
            if (ready(dg) && recv(dg, b, sizeof b, 0) == 1)
                note("sent");
            else
                note("SENT ELSEWHERE");
        } else {
            note(strerror(errno));
        }
        close(d);

        if (chdir("/tmp/own") == 0) {
            struct stat here;
            if (stat(".", &here) == 0 && here.st_dev == want.st_dev && here.st_ino == want.st_ino)
                note("chdir");
            else
                note("WRONG CWD");
            if (chdir("/"))
                note("chdir / failed");
        } else {
            note(strerror(errno));
        }
    }
    stop = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; seen[i].what; i++)
        printf("%s %d\n", seen[i].what, seen[i].n);
    return 0;
}
