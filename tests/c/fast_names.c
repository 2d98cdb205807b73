/* Names made, moved, read and removed: open(O_CREAT) of new files, mkdir,
 * mkdirat, link, linkat, rename, renameat, renameat2, symlink, symlinkat,
 * readlink, readlinkat, unlink, unlinkat and rmdir, and getcwd, with their
 * errors -- what native/fastpath.c answers in C
 * (create_open, make_dir, link_name, rename_name, remove_name) and the cases
 * it leaves to Python.  Prints
 * one line per call (result, errno name) and the mode and owner of what was
 * made; nothing that differs between runs or between a sandbox and Linux
 * (no inode, no time, no absolute path).
 *
 * Usage: fast_names DIR [RODIR HIDDEN LOWER]
 *   DIR     an empty writable directory: the cases to compare with Linux,
 *           last those of a process that dropped root to uid 1000 (so run as
 *           root); DIR must let uid 1000 search it
 *   RODIR   a directory of a read-only mount holding "file" (EROFS)
 *   HIDDEN  a hidden directory (an empty stand-in)
 *   LOWER   a directory of the overlay's lower layer holding "a", "b" and
 *           an empty directory "e", or "-"; these three: sandbox only
 *
 *        fast_names loop DIR N
 *           creates N new files in DIR (O_CREAT|O_EXCL), links and unlinks
 *           each once more, renames it there and back, removes them, makes
 *           and removes N directories, makes, reads and removes N symlinks
 *           and asks for the cwd N times; prints "calls: 12N"
 *
 *        fast_names race DIR HOSTDIR FDDIR SECONDS
 *           threads create files below DIR/r while others swap DIR/r/sub
 *           for symlinks to HOSTDIR (a host directory the sandbox shows
 *           read-only, or a hidden one), the path string in memory for one
 *           naming HOSTDIR, and the directory fd they create through for
 *           one on FDDIR (a read-only mount's directory, writable on the
 *           host), and remove what they made the same ways (files,
 *           directories, symlinks); and read the link "secretlink" through
 *           the same swaps; prints how many creations succeeded and how
 *           often a link whose target is "hidden-target" or "shown-target"
 *           was read. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "transcript.h"

static void show(const char *what)
{
	struct stat st;
	if (lstat(what, &st)) { printf("%s: lstat %s\n", what, strerrorname_np(errno)); errno = 0; return; }
	printf("%s: type %o mode %04o uid %u gid %u size %ld\n", what, st.st_mode >> 12, st.st_mode & 07777,
	       st.st_uid, st.st_gid, (long)st.st_size);
}

static long openat_(int dirfd, const char *path, int flags, int mode)
{
	long fd = openat(dirfd, path, flags, mode);
	if (fd >= 0) {
		close((int)fd);
		return 0;          /* the number says nothing */
	}
	return fd;
}

#define O(path, flags, mode) openat_(AT_FDCWD, path, flags, mode)

static long closed(long fd)
{
	if (fd >= 0) close((int)fd);
	return fd < 0 ? fd : 0;
}

static void cases(void)
{
	T(O("f1", O_WRONLY | O_CREAT, 0640));
	show("f1");
	T(O("f1", O_WRONLY | O_CREAT, 0600));           /* there: opened, mode unchanged */
	show("f1");
	T(O("f2", O_RDWR | O_CREAT | O_EXCL, 0777));
	show("f2");
	T(O("f2", O_RDWR | O_CREAT | O_EXCL, 0777));    /* EEXIST */
	T(O("f3", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0666));
	show("f3");
	T(closed(syscall(SYS_creat, "f4", 0751)));
	show("f4");
	T(closed(syscall(SYS_open, "f5", O_WRONLY | O_CREAT | 0x80000000u, 0100644 | 0x70000)));   /* type bits dropped */
	show("f5");
	T(O("f6", O_RDONLY | O_CREAT, 0));
	show("f6");
	T(O("f7", O_WRONLY | O_CREAT, 07777));
	show("f7");
	umask(077);
	T(O("u1", O_WRONLY | O_CREAT, 0666));
	show("u1");
	umask(0);
	T(O("u2", O_WRONLY | O_CREAT, 0666));
	show("u2");
	umask(022);

	/* the last name a symlink */
	T(symlink("f1", "l1"));
	T(O("l1", O_WRONLY | O_CREAT, 0600));            /* opens f1 */
	T(O("l1", O_WRONLY | O_CREAT | O_EXCL, 0600));   /* EEXIST */
	T(O("l1", O_WRONLY | O_CREAT | O_NOFOLLOW, 0600)); /* ELOOP */
	T(symlink("made-by-link", "dangling"));
	T(O("dangling", O_WRONLY | O_CREAT | O_EXCL, 0600));   /* EEXIST: not followed */
	show("made-by-link");
	T(O("dangling", O_WRONLY | O_CREAT, 0604));        /* creates its target */
	show("made-by-link");
	T(symlink("sub/deeper", "dangling2"));
	T(O("dangling2", O_WRONLY | O_CREAT, 0600));       /* ENOENT: no sub */
	T(symlink("loop", "loop"));
	T(O("loop", O_WRONLY | O_CREAT, 0600));            /* ELOOP */

	/* directories and trailing slashes */
	T(mkdir("d", 0755));
	T(O("d", O_WRONLY | O_CREAT, 0600));               /* EISDIR */
	T(O("d", O_RDONLY | O_CREAT, 0600));               /* EISDIR */
	T(O("new/", O_WRONLY | O_CREAT, 0600));            /* EISDIR */
	T(O("new/.", O_WRONLY | O_CREAT, 0600));
	T(O("d/", O_RDONLY | O_CREAT, 0600));
	T(O("f1/", O_RDONLY | O_CREAT, 0600));             /* ENOTDIR */
	T(O("d/../f8", O_WRONLY | O_CREAT, 0600));
	show("f8");
	T(O("./d/./f9", O_WRONLY | O_CREAT, 0600));
	show("d/f9");
	T(O("missing/f", O_WRONLY | O_CREAT, 0600));       /* ENOENT */
	T(O("f1/f", O_WRONLY | O_CREAT, 0600));            /* ENOTDIR */
	T(O("new", O_WRONLY | O_CREAT | O_DIRECTORY, 0600)); /* EINVAL */
	T(O("", O_WRONLY | O_CREAT, 0600));                /* ENOENT */
	show("new");
	int d = open("d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	T(openat_(d, "at1", O_WRONLY | O_CREAT | O_EXCL, 0620));
	show("d/at1");
	T(openat_(d, "../at2", O_WRONLY | O_CREAT, 0620));
	show("at2");
	T(openat_(987, "at3", O_WRONLY | O_CREAT, 0620));  /* EBADF */
	int f = open("f1", O_RDONLY | O_CLOEXEC);
	T(openat_(f, "at4", O_WRONLY | O_CREAT, 0620));    /* ENOTDIR */
	close(f);
	close(d);

	/* ENAMETOOLONG */
	char name[300], path[4200];
	memset(name, 'n', 256);
	name[256] = 0;
	T(O(name, O_WRONLY | O_CREAT, 0600));
	name[255] = 0;
	T(O(name, O_WRONLY | O_CREAT, 0600));
	T(unlink(name));
	size_t at = 0;
	while (at < 4100) { memcpy(path + at, "d/../", 5); at += 5; }
	strcpy(path + at, "x");
	T(O(path, O_WRONLY | O_CREAT, 0600));

	/* a set-group-id directory of another group (root may chown) */
	T(mkdir("sg", 0777));
	T(chown("sg", -1, 4242));
	T(chmod("sg", 02777));
	T(O("sg/plain", O_WRONLY | O_CREAT, 0644));
	show("sg/plain");
	T(O("sg/setgid", O_WRONLY | O_CREAT, 02755));
	show("sg/setgid");
	T(O("sg/setgid-nox", O_WRONLY | O_CREAT, 02644));
	show("sg/setgid-nox");
}

static void directories(void)
{
	T(mkdir("m1", 0755));
	show("m1");
	T(mkdir("m1", 0755));                              /* EEXIST */
	T(mkdir("m2/", 0700));
	show("m2");
	T(mkdir("m3", 07777));                             /* S_ISVTX kept, S_ISUID dropped */
	show("m3");
	umask(077);
	T(mkdir("m4", 0777));
	show("m4");
	umask(0);
	T(mkdir("m5", 0777));
	show("m5");
	umask(022);
	T(mkdir("l1", 0755));                              /* a symlink: EEXIST */
	T(mkdir("dangling", 0755));                        /* EEXIST, not followed */
	T(mkdir("f1", 0755));                              /* EEXIST */
	T(mkdir("missing/x", 0755));                       /* ENOENT */
	T(mkdir("f1/x", 0755));                            /* ENOTDIR */
	T(mkdir("m1/.", 0755));                            /* EEXIST */
	T(mkdir("m1/..", 0755));                           /* EEXIST */
	T(mkdir("new/.", 0755));                           /* ENOENT */
	T(mkdir("./", 0755));                              /* EEXIST: busybox tar makes it so */
	T(mkdir("m1/../", 0755));                          /* EEXIST */
	T(mkdir("f1/.", 0755));                            /* ENOTDIR */
	T(mkdir("f1/", 0755));                             /* EEXIST, whatever the "/" says */
	T(mkdir("l1/", 0755));                             /* EEXIST: not followed */
	T(mkdir("", 0755));                                /* ENOENT */
	T(mkdir("/", 0755));                               /* EEXIST */
	T(mkdir("m1//m6//", 0755));
	show("m1/m6");
	int d = open("m1", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	T(syscall(SYS_mkdirat, d, "m7", 0750));
	show("m1/m7");
	T(syscall(SYS_mkdirat, d, "m7", 0750));            /* EEXIST */
	T(syscall(SYS_mkdirat, 987, "m8", 0750));          /* EBADF */
	T(syscall(SYS_mkdirat, 0x100000000L | (unsigned)AT_FDCWD, "m9", 0x100000000L | 0700));   /* ints */
	show("m9");
	close(d);
	char name[300];
	memset(name, 'n', 256);
	name[256] = 0;
	T(mkdir(name, 0755));                              /* ENAMETOOLONG */
	T(mkdir("sg/dir", 0755));                          /* its group, and S_ISGID */
	show("sg/dir");
}

static void links(void)
{
	struct stat st;
	T(link("f3", "h1"));
	T(lstat("f3", &st));
	printf("f3: links %lu\n", (unsigned long)st.st_nlink);
	T(link("f3", "h1"));                               /* EEXIST */
	T(link("missing", "h1"));                          /* ENOENT, before EEXIST */
	T(link("d", "h2"));                                /* EPERM: a directory */
	T(link("d", "f1"));                                /* EEXIST before EPERM */
	T(link("missing", "h3"));                          /* ENOENT */
	T(link("f3", "missing/h"));                        /* ENOENT */
	T(link("f3", "f1/h"));                             /* ENOTDIR */
	T(link("f3", "h4/"));                              /* ENOENT: a directory asked for */
	T(link("f3", "f1/"));                              /* EEXIST */
	T(link("f3", "d/."));                              /* EEXIST */
	T(link("f3", "new/."));                            /* ENOENT */
	T(link("f3", "./"));                               /* EEXIST */
	T(link("dangling", "h5"));                         /* the symlink itself */
	show("h5");
	T(link("l1", "h6"));
	show("h6");
	T(symlink("x", "s/"));                             /* ENOENT */
	T(mknod("n/", S_IFREG | 0600, 0));                 /* ENOENT */
	int d = open("d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	T(linkat(AT_FDCWD, "f3", d, "h7", 0));
	show("d/h7");
	T(linkat(d, "h7", AT_FDCWD, "h8", 0));
	show("h8");
	T(linkat(d, "h7", d, "h9", AT_SYMLINK_FOLLOW));
	T(linkat(d, "h7", d, "h10", 0x1));                 /* EINVAL */
	T(linkat(987, "h7", d, "h11", 0));                 /* EBADF */
	T(syscall(SYS_linkat, 0x100000000L | (unsigned)AT_FDCWD, "f3", 0x100000000L | (unsigned)AT_FDCWD, "h12",
		  0x100000000L));                             /* ints */
	show("h12");
	close(d);
	T(lstat("f3", &st));
	printf("f3: links %lu\n", (unsigned long)st.st_nlink);
}

static long renameat2_(int olddir, const char *old, int newdir, const char *new_, unsigned flags)
{
	return syscall(SYS_renameat2, olddir, old, newdir, new_, flags);
}

static void renames(void)
{
	T(O("r1", O_WRONLY | O_CREAT, 0640));
	T(rename("r1", "r2"));
	show("r1");
	show("r2");
	T(rename("r2", "f7"));                             /* over a file */
	show("f7");
	T(rename("f7", "f7"));                             /* itself */
	T(rename("missing", "r3"));                        /* ENOENT */
	T(rename("missing", "missing2/x"));                /* ENOENT, the old name's */
	T(rename("f7", "missing/x"));                      /* ENOENT */
	T(rename("f7", "f1/x"));                           /* ENOTDIR */
	T(rename("f7", "d"));                              /* EISDIR */
	T(rename("d", "d2"));                              /* a directory */
	T(rename("d2", "d"));
	T(rename("h6", "h6b"));                            /* a symlink, not followed */
	show("h6b");
	T(rename("h8", "h12"));                            /* two links of one file: nothing */
	show("h8");
	T(O("r4", O_WRONLY | O_CREAT, 0600));
	T(renameat2_(AT_FDCWD, "r4", AT_FDCWD, "f7", RENAME_NOREPLACE));   /* EEXIST */
	T(renameat2_(AT_FDCWD, "r4", AT_FDCWD, "r5", RENAME_NOREPLACE));
	show("r5");
	T(renameat2_(AT_FDCWD, "r5", AT_FDCWD, "f7", RENAME_EXCHANGE));
	show("r5");
	T(renameat2_(AT_FDCWD, "r5", AT_FDCWD, "f7", 0x8));                /* EINVAL */
	T(renameat2_(AT_FDCWD, "r5", AT_FDCWD, "f7", RENAME_NOREPLACE | RENAME_EXCHANGE));   /* EINVAL */
	int d = open("d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	T(renameat(AT_FDCWD, "r5", d, "r6"));
	show("d/r6");
	T(renameat(d, "r6", AT_FDCWD, "r7"));
	show("r7");
	T(renameat(987, "r7", d, "r8"));                   /* EBADF */
	T(syscall(SYS_renameat2, 0x100000000L | (unsigned)AT_FDCWD, "r7", 0x100000000L | (unsigned)AT_FDCWD, "r9",
		  0x100000000L));                             /* ints */
	show("r9");
	close(d);
}

/* readlinkat into a buffer of `size` (any 64-bit value: the kernel reads
 * an int), filled with '#' first: prints what came and the byte after it,
 * which nothing may have written */
static long readlink_(int dirfd, const char *path, unsigned long size)
{
	char buf[256];
	memset(buf, '#', sizeof buf);
	long n = syscall(SYS_readlinkat, dirfd, path, buf, size);
	if (n >= 0) printf("  readlink %s: \"%.*s\" then '%c'\n", path, (int)n, buf, buf[n]);
	return n;
}

/* symlink, symlinkat (make_symlink), readlink, readlinkat (read_link) and
 * getcwd (get_cwd) */
static void symlinks(void)
{
	T(symlink("f1", "s1"));
	show("s1");
	T(symlink("f1", "s1"));                            /* EEXIST */
	T(symlink("x", "f1"));                             /* EEXIST: a file */
	T(symlink("x", "d"));                              /* EEXIST: a directory */
	T(symlink("x", "dangling"));                       /* EEXIST: a dangling link is there */
	T(symlink("x", "s2/"));                            /* ENOENT */
	T(symlink("x", "d/."));                            /* EEXIST */
	T(symlink("x", "missing/s"));                      /* ENOENT */
	T(symlink("x", "f1/s"));                           /* ENOTDIR */
	T(symlink("", "s3"));                              /* ENOENT */
	T(symlink("x", ""));                               /* ENOENT */
	T(symlink("/abs/olute/../target", "d/s4"));
	show("d/s4");
	T(symlink("d", "sd"));
	T(symlink("../f1", "sd/s5"));                      /* through a symlink */
	show("d/s5");
	char name[300], big[4200];
	memset(name, 'n', 256);
	name[256] = 0;
	T(symlink("x", name));                             /* ENAMETOOLONG */
	memset(big, 't', 4097);
	big[4097] = 0;
	T(symlink(big, "s6"));                             /* ENAMETOOLONG: the target */
	big[4095] = 0;
	T(symlink(big, "s6"));                             /* the longest target */
	show("s6");
	int d = open("d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	T(syscall(SYS_symlinkat, "../f1", d, "s7"));
	show("d/s7");
	T(syscall(SYS_symlinkat, "x", 987, "s8"));         /* EBADF */
	T(syscall(SYS_symlinkat, "x", 0x100000000L | (unsigned)d, "s9"));   /* ints */
	show("d/s9");

	T(readlink_(AT_FDCWD, "s1", 100));
	T(readlink_(AT_FDCWD, "s1", 1));                   /* cut */
	T(readlink_(AT_FDCWD, "s1", 2));                   /* exactly */
	T(readlink_(AT_FDCWD, "s1", 0));                   /* EINVAL */
	T(readlink_(AT_FDCWD, "s1", 0xffffffffUL));        /* -1: EINVAL */
	T(readlink_(AT_FDCWD, "s1", 0x100000010UL));       /* 16 */
	T(readlink_(AT_FDCWD, "missing", 0));              /* EINVAL first */
	T(readlink_(AT_FDCWD, "f1", 100));                 /* EINVAL */
	T(readlink_(AT_FDCWD, "d", 100));                  /* EINVAL */
	T(readlink_(AT_FDCWD, "d/", 100));                 /* EINVAL */
	T(readlink_(AT_FDCWD, "s1/", 100));                /* ENOTDIR: followed to f1 */
	T(readlink_(AT_FDCWD, "sd/", 100));                /* EINVAL: followed to d */
	T(readlink_(AT_FDCWD, "sd/s5", 100));
	T(readlink_(AT_FDCWD, "d/s4", 100));
	T(readlink_(AT_FDCWD, "dangling", 100));
	T(readlink_(AT_FDCWD, "loop", 100));
	T(readlink_(AT_FDCWD, "missing", 100));            /* ENOENT */
	T(readlink_(AT_FDCWD, "missing/x", 100));          /* ENOENT */
	T(readlink_(AT_FDCWD, "f1/x", 100));               /* ENOTDIR */
	T(readlink_(AT_FDCWD, "", 100));                   /* ENOENT */
	T(readlink_(AT_FDCWD, name, 100));                 /* ENAMETOOLONG */
	T(readlink_(AT_FDCWD, ".", 100));                  /* EINVAL */
	T(readlink_(d, "s7", 100));
	T(readlink_(d, "../s1", 100));
	T(readlink_(987, "s7", 100));                      /* EBADF */
	T(readlink_(0x100000000L | (unsigned)d, "s7", 100));   /* ints */
	char buf[8192];
	T(readlink("s6", buf, sizeof buf));                /* 4095 */
	/* faccessat2's flags (effective ids, the link itself) */
	T(syscall(SYS_faccessat2, AT_FDCWD, "s1", R_OK | W_OK, AT_EACCESS));
	T(syscall(SYS_faccessat2, AT_FDCWD, "f1", X_OK, AT_EACCESS));           /* EACCES */
	T(syscall(SYS_faccessat2, AT_FDCWD, "dangling", F_OK, AT_SYMLINK_NOFOLLOW));
	T(syscall(SYS_faccessat2, AT_FDCWD, "dangling", F_OK, AT_EACCESS));    /* ENOENT: followed */
	T(syscall(SYS_faccessat2, AT_FDCWD, "loop", X_OK, AT_SYMLINK_NOFOLLOW | AT_EACCESS));
	T(syscall(SYS_faccessat2, AT_FDCWD, "loop", X_OK, AT_EACCESS));        /* ELOOP */
	T(syscall(SYS_faccessat2, AT_FDCWD, "missing", F_OK, AT_EACCESS));     /* ENOENT */
	T(syscall(SYS_faccessat2, AT_FDCWD, "f1", 8, AT_EACCESS));              /* EINVAL */
	T(syscall(SYS_faccessat2, AT_FDCWD, "f1", F_OK, 0x400));                /* EINVAL */
	T(syscall(SYS_faccessat2, d, "s7", R_OK, AT_EACCESS | 0x100000000L)); /* ints */
	T(syscall(SYS_readlink, "s1", (char *)8, 100));    /* EFAULT */
	T(syscall(SYS_readlink, (char *)8, buf, 100));     /* EFAULT */
	T(syscall(SYS_readlink, "s1", buf, 0x100000004UL));   /* 4 */

	/* the cwd, named relative to where the program started (DIR's own
	 * name differs between Linux and the sandbox) */
	char base[4096], here[4096];
	long n = syscall(SYS_getcwd, base, sizeof base);
	T(fchdir(d));
	long m = syscall(SYS_getcwd, here, sizeof here);
	printf("getcwd in d: %s\n", n > 0 && m == n + 2 && !strncmp(here, base, n - 1) && !strcmp(here + n - 1, "/d")
	       ? "DIR/d" : here);
	T(syscall(SYS_getcwd, here, m) == m);
	T(syscall(SYS_getcwd, here, m - 1));               /* ERANGE */
	T(syscall(SYS_getcwd, here, 0));                   /* ERANGE */
	T(syscall(SYS_getcwd, (char *)8, sizeof here));    /* EFAULT */
	T(chdir(".."));
	close(d);
}

static long unlinkat_(int dirfd, const char *path, int flags)
{
	return syscall(SYS_unlinkat, dirfd, path, flags);
}

static void removals(void)
{
	T(unlink("f2"));
	T(unlink("f2"));                                   /* ENOENT */
	show("f2");
	T(unlink("l1"));                                   /* the link, not f1 */
	show("l1");
	show("f1");
	T(unlink("dangling"));
	T(unlink("d"));                                    /* EISDIR */
	T(rmdir("f3"));                                    /* ENOTDIR */
	T(rmdir("d"));                                     /* ENOTEMPTY */
	T(unlink("missing/x"));                            /* ENOENT */
	T(unlink("f3/x"));                                 /* ENOTDIR */
	T(unlink("f3/"));                                  /* ENOTDIR */
	T(unlink("d/"));                                   /* EISDIR */
	T(rmdir("d/."));                                   /* EINVAL */
	T(rmdir("d/.."));                                  /* ENOTEMPTY */
	T(unlink(""));                                     /* ENOENT */
	T(symlink("d", "ld"));
	T(rmdir("ld"));                                    /* ENOTDIR: not followed */
	T(unlink("ld/f9"));                                /* through it */
	show("d/f9");
	T(unlink("ld"));
	show("d");
	char name[300];
	memset(name, 'n', 256);
	name[256] = 0;
	T(unlink(name));                                   /* ENAMETOOLONG */
	int d = open("d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	T(mkdir("d/e", 0755));
	T(unlinkat_(d, "at1", 0));
	T(unlinkat_(d, "at1", 0));                         /* ENOENT */
	T(unlinkat_(d, "e", 0));                           /* EISDIR */
	T(unlinkat_(d, "e", 0x1));                         /* EINVAL */
	T(unlinkat_(d, "e", AT_REMOVEDIR | 0x100));        /* EINVAL */
	T(unlinkat_(d, "e", AT_REMOVEDIR));
	T(unlinkat_(d, "e", AT_REMOVEDIR));                /* ENOENT */
	T(unlinkat_(d, "../f4", 0));
	show("f4");
	T(unlinkat_(987, "x", 0));                         /* EBADF */
	int f = open("f1", O_RDONLY | O_CLOEXEC);
	T(unlinkat_(f, "x", 0));                           /* ENOTDIR */
	close(f);
	T(unlinkat_(AT_FDCWD, "f5", 0));
	T(syscall(SYS_unlinkat, 0x100000000L | (unsigned)AT_FDCWD, "f6", 0x100000000L));  /* ints */
	show("f6");
	close(d);
	T(mkdir("sticky", 0777));
	T(chmod("sticky", 01777));
	T(O("sticky/roots", O_WRONLY | O_CREAT, 0666));
	T(O("open/roots", O_WRONLY | O_CREAT, 0666));
	T(O("sticky/roots2", O_WRONLY | O_CREAT, 0666));
	T(O("open/roots2", O_WRONLY | O_CREAT, 0666));
}

/* as uid 1000 (gid 0): its new files are its own; its search and write
 * permissions are checked */
static void dropped(void)
{
	T(mkdir("shut", 0755));
	T(O("shut/roots", O_WRONLY | O_CREAT, 0666));
	T(chown("sg", 1000, -1));
	if (setgid(0) || setuid(1000)) { printf("setuid: %s\n", strerrorname_np(errno)); return; }
	T(O("open/mine", O_WRONLY | O_CREAT | O_EXCL, 0644));
	show("open/mine");
	T(O("shut/mine", O_WRONLY | O_CREAT, 0644));       /* EACCES */
	T(O("sg/mine", O_WRONLY | O_CREAT, 02755));        /* not of group 4242: S_ISGID dropped */
	show("sg/mine");
	T(O("f1", O_WRONLY | O_CREAT, 0644));              /* root's 0640: EACCES */
	T(O("open/mine", O_WRONLY | O_CREAT | O_EXCL, 0644));
	T(unlink("shut/roots"));                           /* EACCES */
	T(unlink("sticky/roots"));                         /* EPERM: the sticky bit */
	T(unlink("open/roots"));                           /* its directory's */
	T(unlink("open/mine"));
	T(rmdir("shut"));                                  /* EACCES */
	T(O("sticky/mine", O_WRONLY | O_CREAT, 0666));
	T(unlink("sticky/mine"));
	T(rename("sticky/roots2", "sticky/mine2"));        /* EPERM: the sticky bit */
	T(rename("open/roots2", "shut/x"));                /* EACCES */
	T(rename("open/roots2", "open/mine2"));
	T(unlink("open/mine2"));
	T(link("open/roots", "shut/mylink"));              /* EACCES */
	T(link("open/roots", "open/mylink"));
	T(unlink("open/mylink"));
	T(mkdir("open/mydir", 0777));
	show("open/mydir");
	T(mkdir("shut/mydir", 0777));                      /* EACCES */
	T(mkdir("sg/mydir", 0777));
	show("sg/mydir");
	T(rmdir("open/mydir"));
	T(syscall(SYS_faccessat2, AT_FDCWD, "f1", R_OK, AT_EACCESS));          /* root's 0640: EACCES */
	T(symlink("x", "shut/mysym"));                     /* EACCES */
	T(symlink("x", "open/mysym"));
	show("open/mysym");
	T(readlink_(AT_FDCWD, "open/mysym", 100));
	T(unlink("open/mysym"));
}

/* ---- the race ---------------------------------------------------------------- */

static volatile int stop;
static char *host_dir;
static char racy[4096];        /* a path the kernel would read, changed under it */
static char racy_link[4096];   /* the same, for readlink */
static int made, hidden_read, shown_read;

static void *swap_links(void *arg)
{
	(void)arg;
	while (!stop) {
		rename("r/sub", "r/real");
		symlink(host_dir, "r/sub");
		unlink("r/sub");
		symlink("../../../../../../../..", "r/sub");
		unlink("r/sub");
		rename("r/real", "r/sub");
	}
	return NULL;
}

static void *swap_string(void *arg)
{
	(void)arg;
	char host[4096], link[4096];
	snprintf(host, sizeof host, "%s/from-string", host_dir);
	snprintf(link, sizeof link, "%s/secretlink", host_dir);
	while (!stop) {
		strcpy(racy, host);
		strcpy(racy_link, link);
		strcpy(racy, "r/sub/from-string");
		strcpy(racy_link, "r/sub/secretlink");
	}
	return NULL;
}

static void *swap_fd(void *arg)
{
	int *fds = arg;          /* [the fd the creators name, a writable dir, FDDIR] */
	while (!stop) {
		dup2(fds[2], fds[0]);
		dup2(fds[1], fds[0]);
	}
	return NULL;
}

static void *create(void *arg)
{
	int *fds = arg;
	char p[64];
	for (int i = 0; !stop; i++) {
		snprintf(p, sizeof p, "r/sub/f%d", i % 64);
		int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) { close(fd); __atomic_add_fetch(&made, 1, __ATOMIC_RELAXED); unlink(p); }
		fd = open(racy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0) { close(fd); __atomic_add_fetch(&made, 1, __ATOMIC_RELAXED); }
		unlink(racy);                    /* the string swapped too */
		snprintf(p, sizeof p, "r/sub/m%d", i % 64);
		if (mkdir(p, 0755) == 0) __atomic_add_fetch(&made, 1, __ATOMIC_RELAXED);
		rmdir(p);
		snprintf(p, sizeof p, "md%d", i % 64);
		if (mkdirat(fds[0], p, 0755) == 0) __atomic_add_fetch(&made, 1, __ATOMIC_RELAXED);
		unlinkat(fds[0], p, AT_REMOVEDIR);
		char q[64];
		snprintf(q, sizeof q, "r/sub/f%d", i % 64);
		close(open(q, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
		snprintf(p, sizeof p, "ln%d", i % 64);
		if (linkat(AT_FDCWD, q, fds[0], p, 0) == 0) __atomic_add_fetch(&made, 1, __ATOMIC_RELAXED);
		unlinkat(fds[0], p, 0);
		linkat(AT_FDCWD, q, AT_FDCWD, racy, 0);       /* the string swapped too */
		snprintf(p, sizeof p, "rn%d", i % 64);
		if (renameat(AT_FDCWD, q, fds[0], p) == 0) __atomic_add_fetch(&made, 1, __ATOMIC_RELAXED);
		unlinkat(fds[0], p, 0);
		close(open(q, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
		rename(q, racy);
		unlink(q);
		snprintf(p, sizeof p, "by-fd%d", i % 64);
		fd = openat(fds[0], p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) { close(fd); __atomic_add_fetch(&made, 1, __ATOMIC_RELAXED); }
		unlinkat(fds[0], p, 0);          /* through the swapped fd too */
		snprintf(p, sizeof p, "sl%d", i % 64);
		if (symlinkat("t", fds[0], p) == 0) __atomic_add_fetch(&made, 1, __ATOMIC_RELAXED);
		unlinkat(fds[0], p, 0);
		snprintf(q, sizeof q, "r/sub/sl%d", i % 64);
		if (symlink("t", q) == 0) __atomic_add_fetch(&made, 1, __ATOMIC_RELAXED);
		unlink(q);
		symlink("t", racy);
		unlink(racy);
		/* the host directories' links: a hidden one's must never be read */
		char buf[64];
		long n[3] = { readlink("r/sub/secretlink", buf, 16),
			      readlinkat(fds[0], "secretlink", buf + 16, 16),
			      readlink(racy_link, buf + 32, 16) };
		for (int k = 0; k < 3; k++) {
			if (n[k] == 13 && !memcmp(buf + 16 * k, "hidden-target", 13))
				__atomic_add_fetch(&hidden_read, 1, __ATOMIC_RELAXED);
			if (n[k] == 12 && !memcmp(buf + 16 * k, "shown-target", 12))
				__atomic_add_fetch(&shown_read, 1, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

static int race(const char *dir, const char *host, const char *fddir, int seconds)
{
	host_dir = (char *)host;
	if (chdir(dir) || (mkdir("r", 0755) && errno != EEXIST) || (mkdir("r/sub", 0755) && errno != EEXIST)) {
		perror("race setup");
		return 1;
	}
	strcpy(racy, "r/sub/from-string");
	strcpy(racy_link, "r/sub/secretlink");
	int fds[3] = { 900, open("r/sub", O_RDONLY | O_DIRECTORY | O_CLOEXEC),
		       open(fddir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) };
	if (fds[1] < 0 || fds[2] < 0 || dup2(fds[1], fds[0]) < 0) { perror("race fds"); return 1; }
	pthread_t t[6];
	pthread_create(&t[0], NULL, swap_links, NULL);
	pthread_create(&t[1], NULL, swap_string, NULL);
	pthread_create(&t[2], NULL, swap_fd, fds);
	for (int i = 3; i < 6; i++) pthread_create(&t[i], NULL, create, fds);
	struct timespec ts = { seconds, 0 };
	nanosleep(&ts, NULL);
	stop = 1;
	for (int i = 0; i < 6; i++) pthread_join(t[i], NULL);
	printf("race: created %d\n", made);
	printf("race: read hidden %d, shown %d\n", hidden_read, shown_read);
	return 0;
}

static int loop(const char *dir, int n)
{
	char p[4096];
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof p, "%s/loop%d", dir, i);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) { perror(p); return 1; }
		close(fd);
	}
	for (int i = 0; i < n; i++) {
		char q[4200];
		snprintf(p, sizeof p, "%s/loop%d", dir, i);
		snprintf(q, sizeof q, "%s.link", p);
		if (link(p, q) || unlink(q)) { perror(q); return 1; }
		if (rename(p, q) || rename(q, p)) { perror(q); return 1; }
		if (unlink(p)) { perror(p); return 1; }
		if (mkdir(p, 0755) || rmdir(p)) { perror(p); return 1; }
		char buf[64];
		if (symlink("target", q) || readlink(q, buf, sizeof buf) != 6 || unlink(q)) { perror(q); return 1; }
		if (!getcwd(buf, sizeof buf)) { perror("getcwd"); return 1; }
	}
	printf("calls: %d\n", 12 * n);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "loop")) return loop(argv[2], atoi(argv[3]));
	if (argc == 6 && !strcmp(argv[1], "race")) return race(argv[2], argv[3], argv[4], atoi(argv[5]));
	if ((argc != 2 && argc != 5) || chdir(argv[1])) {
		fprintf(stderr, "usage: fast_names DIR [RODIR HIDDEN LOWER]\n");
		return 2;
	}
	umask(022);
	T(mkdir("open", 0777));
	T(chmod("open", 0777));
	cases();
	directories();
	links();
	renames();
	symlinks();
	removals();
	if (argc > 4) {
		char p[4096];
		printf("-- sandbox only\n");
		snprintf(p, sizeof p, "%s/new", argv[2]);
		T(O(p, O_WRONLY | O_CREAT, 0600));             /* EROFS */
		T(O(p, O_WRONLY | O_CREAT | O_EXCL, 0600));
		snprintf(p, sizeof p, "%s/file", argv[2]);
		T(O(p, O_RDONLY | O_CREAT, 0600));             /* there: opened */
		T(O(p, O_WRONLY | O_CREAT, 0600));             /* EROFS */
		T(unlink(p));                                  /* EROFS */
		T(mkdir(p, 0755));                             /* EEXIST */
		T(link(p, "ro-link"));                         /* EXDEV */
		T(rename(p, "ro-moved"));                      /* EXDEV */
		snprintf(p, sizeof p, "%s/newdir", argv[2]);
		T(mkdir(p, 0755));                             /* EROFS */
		T(rmdir(argv[2]));                             /* a read-only mount's root */
		snprintf(p, sizeof p, "%s/link", argv[2]);
		T(symlink("x", p));                            /* EROFS */
		T(readlink_(AT_FDCWD, p, 100));                /* ENOENT */
		snprintf(p, sizeof p, "%s/newdir", argv[3]);
		T(mkdir(p, 0700));
		show(p);
		snprintf(p, sizeof p, "%s/new", argv[3]);
		T(O(p, O_WRONLY | O_CREAT | O_EXCL, 0640));    /* the stand-in takes it, privately */
		show(p);
		T(unlink(p));
		show(p);
		T(rmdir(argv[3]));                             /* EBUSY */
		snprintf(p, sizeof p, "%s/link", argv[3]);
		T(symlink("in-the-stand-in", p));              /* the stand-in takes it, privately */
		T(readlink_(AT_FDCWD, p, 100));
		T(unlink(p));
		if (strcmp(argv[4], "-")) {
			T(readlink_(AT_FDCWD, argv[4], 100));  /* EINVAL: a lower directory, not copied up */
			snprintf(p, sizeof p, "%s/e", argv[4]);
			T(readlink_(AT_FDCWD, p, 100));        /* EINVAL */
			snprintf(p, sizeof p, "%s/a", argv[4]);
			char q[4200];
			snprintf(q, sizeof q, "%s/a2", argv[4]);
			T(rename(p, q));                       /* copied up, then renamed */
			show(q);
			T(rename(q, p));
			T(unlink(p));
			show(p);
			snprintf(p, sizeof p, "%s/b", argv[4]);
			T(link(p, "lower-link"));              /* copied up, then linked */
			show("lower-link");
			T(unlink(p));
			show(p);
			snprintf(p, sizeof p, "%s/e", argv[4]);
			T(rmdir(p));                           /* a directory of the lower layer */
			show(p);
			T(mkdir(p, 0705));                     /* made again, in the upper layer */
			show(p);
		}
		printf("-- end\n");
	}
	dropped();
	return 0;
}
