/* Mounts as a guest makes them, for a rootfs (tests/test_guest_mounts.py):
 * the same transcript natively (as root, under `unshare -m`, in a chroot)
 * and in the sandbox.  It makes a mount namespace of its own first, its
 * mounts private (natively, unshare(1)'s are already).  Usage: mount_probe DIR */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char d[256];

static const char *p(const char *name)
{
	static char buf[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof buf[i], "%s/%s", d, name);
	return buf[i];
}

static void report(const char *what, int r)
{
	if (r == 0) printf("%s ok\n", what);
	else printf("%s %s\n", what, strerrorname_np(errno));
	fflush(stdout);
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) { printf("put %s %s\n", path + strlen(d), strerrorname_np(errno)); return; }
	if (write(fd, text, strlen(text)) < 0) printf("write %s\n", strerrorname_np(errno));
	close(fd);
}

static void show(const char *what, const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	if (fd < 0) { printf("%s %s\n", what, strerrorname_np(errno)); return; }
	ssize_t n = read(fd, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	printf("%s %s\n", what, buf);
}

static void list(const char *what, const char *path)
{
	struct dirent **names;
	int n = scandir(path, &names, NULL, alphasort);
	printf("%s", what);
	if (n < 0) printf(" %s", strerrorname_np(errno));
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) printf(" %s", names[i]->d_name);
		free(names[i]);
	}
	if (n >= 0) free(names);
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 2) return 2;
	snprintf(d, sizeof d, "%s", argv[1]);
	report("unshare", unshare(CLONE_NEWNS));
	/* in a chroot "/" is no mount point natively (EINVAL), where a rootfs is one in the sandbox */
	mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	mkdir(p("t"), 0755);
	mkdir(p("b"), 0755);
	mkdir(p("src"), 0755);
	put(p("t/under"), "under");
	put(p("src/f"), "src");
	put(p("file"), "file");

	report("missing target", mount("x", p("nope"), "tmpfs", 0, NULL));
	report("unknown type", mount("x", p("t"), "nosuchfs", 0, NULL));
	report("tmpfs on a file", mount("x", p("file"), "tmpfs", 0, NULL));
	report("bad option", mount("x", p("t"), "tmpfs", 0, "bogus"));
	report("umount not a mount point", umount2(p("src"), 0));

	report("tmpfs", mount("x", p("t"), "tmpfs", 0, "mode=700"));
	struct stat st;
	stat(p("t"), &st);
	printf("mode %o\n", st.st_mode & 07777);
	list("tmpfs holds", p("t"));
	put(p("t/x"), "in tmpfs");
	show("read", p("t/x"));
	report("remount ro", mount(NULL, p("t"), NULL, MS_REMOUNT | MS_RDONLY, NULL));
	put(p("t/y"), "y");
	report("nested", mount("y", p("t"), "tmpfs", 0, NULL));
	list("stacked holds", p("t"));
	report("umount top", umount2(p("t"), 0));
	list("below holds", p("t"));
	report("umount", umount2(p("t"), 0));
	list("dir holds", p("t"));

	report("bind", mount(p("src"), p("b"), NULL, MS_BIND, NULL));
	show("through bind", p("b/f"));
	report("bind ro", mount(NULL, p("b"), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
	put(p("b/g"), "g");
	report("unlink in ro", unlink(p("b/f")));
	report("mkdir in ro", mkdir(p("b/dir"), 0755));
	put(p("src/g"), "g");
	show("new file through bind", p("b/g"));
	report("umount bind", umount2(p("b"), MNT_DETACH));
	list("b holds", p("b"));

	report("parent's tmpfs", mount("x", p("t"), "tmpfs", 0, NULL));
	put(p("t/parent"), "parent");
	pid_t pid = fork();
	if (pid == 0) {
		list("child sees", p("t"));
		report("child unshare", unshare(CLONE_NEWNS));
		report("child umount", umount2(p("t"), 0));
		report("child tmpfs", mount("c", p("t"), "tmpfs", 0, NULL));
		put(p("t/child"), "child");
		list("child holds", p("t"));
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	list("parent holds", p("t"));
	report("umount parent's", umount2(p("t"), 0));
	list("finally", p("t"));
	return 0;
}
