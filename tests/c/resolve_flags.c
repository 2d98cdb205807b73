/* openat2's RESOLVE_* flags over a small tree, one line per case: run
 * natively and in the sandbox, the output must be the same.
 *
 * usage: resolve_flags DIR   (DIR: an empty directory it may fill) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int base;

static void try(const char *path, unsigned long long flags, unsigned long long resolve)
{
    struct open_how how = { .flags = flags, .resolve = resolve };
    long fd = syscall(SYS_openat2, base, path, &how, sizeof how);
    if (fd < 0) {
        printf("%-28s %#6llx %#4llx = %s\n", path, flags, resolve, strerrorname_np(errno));
        return;
    }
    /* what was opened: the name of a file in the tree, by its inode */
    struct stat st;
    fstat(fd, &st);
    printf("%-28s %#6llx %#4llx = ino %s%s\n", path, flags, resolve,
           S_ISDIR(st.st_mode) ? "dir " : S_ISLNK(st.st_mode) ? "link " : "file ",
           st.st_size == 3 ? "in" : st.st_size == 4 ? "out" : "");
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    char p[4096];
    snprintf(p, sizeof p, "%s/top", argv[1]);
    mkdir(p, 0755);
    base = open(p, O_PATH | O_DIRECTORY);
    if (base < 0) { perror(p); return 2; }
    /* top/{in, sub/, rel -> in, abs -> /etc/hostname-ish, up -> ../out, loop -> loop, dirlink -> sub} ; out beside top */
    mkdirat(base, "sub", 0755);
    int f = openat(base, "in", O_CREAT | O_WRONLY, 0644); write(f, "in\n", 3); close(f);
    snprintf(p, sizeof p, "%s/out", argv[1]);
    f = open(p, O_CREAT | O_WRONLY, 0644); write(f, "out\n", 4); close(f);
    symlinkat("in", base, "rel");
    symlinkat(p, base, "abs");
    symlinkat("/in", base, "rootin");
    symlinkat("../out", base, "up");
    symlinkat("loop", base, "loop");
    symlinkat("sub", base, "dirlink");
    symlinkat("/proc/self/fd/0", base, "magic");

    const char *paths[] = { "in", "rel", "abs", "rootin", "up", "../out", "sub/../in", "sub/../../out",
                            "dirlink/../in", "/in", "loop", "magic", "/proc/self/fd/0", "..", ".", "sub/..",
                            "dirlink", "nosuch", NULL };
    unsigned long long res[] = { 0, RESOLVE_NO_SYMLINKS, RESOLVE_NO_MAGICLINKS, RESOLVE_BENEATH, RESOLVE_IN_ROOT,
                                 RESOLVE_NO_XDEV, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
                                 RESOLVE_BENEATH | RESOLVE_IN_ROOT };
    for (int i = 0; paths[i]; i++)
        for (unsigned j = 0; j < sizeof res / sizeof *res; j++) {
            if (!strncmp(paths[i], "/proc", 5) && (res[j] & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)) == 0)
                continue;           /* where /proc's fd 0 leads differs by design (the host's terminal) */
            if (res[j] == RESOLVE_NO_XDEV && (!strcmp(paths[i], "abs") || !strcmp(paths[i], "rootin")))
                continue;           /* a jump to "/" crosses a mount or not as the host's mount table has it */
            try(paths[i], O_RDONLY, res[j]);
        }
    try("rel", O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
    try("magic", O_PATH | O_NOFOLLOW, RESOLVE_NO_MAGICLINKS);
    try("new", O_CREAT | O_WRONLY, RESOLVE_BENEATH);
    try("sub/../../new", O_CREAT | O_WRONLY, RESOLVE_BENEATH);
    try("/new2", O_CREAT | O_WRONLY, RESOLVE_IN_ROOT);
    try("in", O_RDONLY, 0x40);
    try("/proc/self", O_RDONLY | O_DIRECTORY, RESOLVE_NO_XDEV);     /* into another mount: EXDEV */
    /* a larger struct with zero tail is fine, a non-zero tail E2BIG */
    struct { struct open_how h; unsigned long long extra; } big = { { .flags = O_RDONLY }, 0 };
    long fd = syscall(SYS_openat2, base, "in", &big, sizeof big);
    printf("big zero tail = %s\n", fd >= 0 ? "ok" : strerrorname_np(errno));
    big.extra = 1;
    fd = syscall(SYS_openat2, base, "in", &big, sizeof big);
    printf("big non-zero tail = %s\n", fd >= 0 ? "ok" : strerrorname_np(errno));
    return 0;
}
