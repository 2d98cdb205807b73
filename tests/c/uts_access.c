/* sethostname/setdomainname need CAP_SYS_ADMIN (over the UTS namespace's
 * user namespace); access(2) through /proc/self/fd/N of a pipe, a socket or
 * an anonymous inode answers from the object's own mode and owner.  Run
 * natively in a UTS namespace of its own (root may rename it) and in sentry,
 * as root and as another user; the transcripts must be the same. */
#include "transcript.h"
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

static void uts(void)
{
	T(sethostname("box-a", 5));
	T(syscall(SYS_sethostname, "box-b", 0x100000005ul));   /* len is an int */
	T(syscall(SYS_sethostname, "box-c", 0xfffffffful));    /* -1 */
	T(setdomainname("dom-a", 5));
	T(sethostname("x", 65));
	char name[65] = "";
	gethostname(name, sizeof name);
	printf("hostname: %s\n", has_cap(CAP_SYS_ADMIN) ? name : "(unchanged)");
}

static void drop_sys_admin(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	syscall(SYS_capget, &h, d);
	d[0].effective &= ~(1u << CAP_SYS_ADMIN);
	syscall(SYS_capset, &h, d);
}

static void fd_access(void)
{
	int p[2], s[2];
	pipe(p);
	socketpair(AF_UNIX, SOCK_STREAM, 0, s);
	int fds[] = { p[0], p[1], s[0], eventfd(0, 0) };
	const char *names[] = { "pipe read end", "pipe write end", "socket", "eventfd" };
	int modes[] = { F_OK, R_OK, W_OK, X_OK, R_OK | W_OK };
	const char *mode_names[] = { "F", "R", "W", "X", "RW" };
	for (int i = 0; i < 4; i++) {
		char path[64];
		struct stat st;
		snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
		stat(path, &st);
		printf("%s (mode %o):", names[i], st.st_mode);
		for (int m = 0; m < 5; m++) {
			int r = access(path, modes[m]);
			printf(" %s=%s", mode_names[m], r ? strerrorname_np(errno) : "0");
			r = faccessat(AT_FDCWD, path, modes[m], AT_EACCESS);
			printf("/%s", r ? strerrorname_np(errno) : "0");
		}
		printf("\n");
	}
}

int main(void)
{
	setvbuf(stdout, 0, _IONBF, 0);
	printf("uid %d euid %d\n", getuid(), geteuid());
	uts();
	fd_access();
	if (has_cap(CAP_SYS_ADMIN)) {
		drop_sys_admin();
		printf("-- without CAP_SYS_ADMIN\n");
		uts();
	}
	return 0;
}
