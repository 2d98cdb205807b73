/* Makes what a shell cannot: a unix socket bound by path, and an O_TMPFILE
 * file linked in by linkat (static, so it runs in any rootfs).
 *
 * usage: owner_make sock PATH | owner_make tmpfile DIR NAME MODE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "sock")) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        strncpy(a.sun_path, argv[2], sizeof a.sun_path - 1);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a)) { perror("bind"); return 1; }
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "tmpfile")) {
        int fd = open(argv[2], O_TMPFILE | O_WRONLY, (int)strtol(argv[4], NULL, 8));
        if (fd < 0) { perror("O_TMPFILE"); return 1; }
        if (write(fd, "x\n", 2) != 2) { perror("write"); return 1; }
        char proc[64], dst[4096];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        snprintf(dst, sizeof dst, "%s/%s", argv[2], argv[3]);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, dst, AT_SYMLINK_FOLLOW)) { perror("linkat"); return 1; }
        return 0;
    }
    fprintf(stderr, "usage: owner_make sock PATH | owner_make tmpfile DIR NAME MODE\n");
    return 2;
}
