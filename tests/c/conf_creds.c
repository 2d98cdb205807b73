/* Credentials (issue 4): the set*id family and capabilities, run as root
 * natively and as the sandbox's root in sentry; the transitions and their
 * capability effects must be Linux's (credentials(7), capabilities(7)). */
#include "transcript.h"
#include <grp.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <linux/capability.h>

static void ids(const char *when)
{
	uid_t r, e, s; gid_t gr, ge, gs;
	getresuid(&r, &e, &s); getresgid(&gr, &ge, &gs);
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	syscall(SYS_capget, &h, d);
	gid_t g[16]; int n = getgroups(16, g);
	/* root's full set differs between hosts: relations only */
	unsigned eff = d[0].effective, prm = d[0].permitted;
	printf("%s: uid %d/%d/%d gid %d/%d/%d groups %d eff %s prm %s setuid %d chown %d\n", when,
	       r, e, s, gr, ge, gs, n,
	       !eff ? "none" : eff == prm ? "=prm" : "<prm", prm ? "some" : "none",
	       eff >> 7 & 1, eff & 1);
}

static void in_child(const char *name, void (*fn)(void))
{
	printf("-- %s\n", name);
	pid_t c = fork();
	if (c == 0) { fn(); exit(0); }
	int st; waitpid(c, &st, 0);
	status(name, st);
}

static void drop_all(void)
{
	T(setgroups(0, 0)); T(setgid(100)); T(setuid(1000)); ids("after setuid(1000)");
	T(setuid(0)); T(seteuid(0)); T(setgid(0)); T(setgroups(0, 0));
	T(setuid(1000)); ids("still");
}

static void effective_only(void)
{
	T(seteuid(1000)); ids("seteuid(1000)");
	T(seteuid(0)); ids("seteuid(0)");
	T(setresuid(-1, 2000, -1)); ids("setresuid(-1,2000,-1)");
	T(setresuid(-1, 0, -1));
}

static void saved_root(void)
{
	T(setresuid(1000, 1000, 0)); ids("setresuid(1000,1000,0)");
	T(setuid(0)); ids("setuid(0) with saved root");
	T(setresuid(1000, 1000, 1000)); ids("all 1000");
	T(setresuid(0, -1, -1));
}

static void reuid(void)
{
	T(setreuid(1000, -1)); ids("setreuid(1000,-1)");
	T(setreuid(-1, 1000)); ids("setreuid(-1,1000)");
	T(setreuid(0, 0));
	T(setreuid(-1, 0)); ids("setreuid(-1,0)");
}

static void fsids(void)
{
	T(setfsuid(1000)); T(setfsuid(-1)); T(setfsgid(100)); T(setfsgid(-1));
	ids("setfsuid(1000)");
	T(setfsuid(0)); T(setfsuid(-1));
}

static void gids(void)
{
	gid_t g[3] = { 5, 6, 7 };
	T(setgroups(3, g)); ids("setgroups 3");
	gid_t back[16]; T(getgroups(0, 0)); T(getgroups(1, back)); T(getgroups(16, back));
	printf("groups %d %d %d\n", back[0], back[1], back[2]);
	T(setresgid(100, 200, 300)); ids("setresgid(100,200,300)");
	T(setregid(-1, 100)); T(setgid(300)); ids("gids set");
	T(setuid(1000));
	T(setgid(0)); T(setgid(100)); T(setregid(200, -1)); T(setgroups(3, g));
	ids("gid changes as uid 1000");
}

static void caps(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	T(syscall(SYS_capget, &h, d));
	d[0].effective &= ~(1u << 7); d[0].permitted &= ~(1u << 7);   /* drop CAP_SETUID */
	T(syscall(SYS_capset, &h, d));
	T(setuid(1000)); ids("without CAP_SETUID");
	d[0].permitted |= 1u << 7;
	T(syscall(SYS_capset, &h, d));
	h.version = 0x12345;
	T(syscall(SYS_capget, &h, d));
	printf("version written back: %#x\n", h.version);
	h.version = _LINUX_CAPABILITY_VERSION_3; h.pid = 999999;
	T(syscall(SYS_capget, &h, d));
}

static void bad(void)
{
	T(setuid(-1)); T(setgid(-1)); T(setgroups(-1, 0)); T(setgroups(70000, 0));
	T(getgroups(-1, 0));
}

int main(int argc, char **argv)
{
	if (argc < 2 || chdir(argv[1])) return 2;
	setvbuf(stdout, 0, _IONBF, 0);
	T(setgroups(0, 0));
	ids("start");
	in_child("drop all", drop_all);
	in_child("effective only", effective_only);
	in_child("saved root", saved_root);
	in_child("setreuid", reuid);
	in_child("fsids", fsids);
	in_child("gids", gids);
	in_child("capabilities", caps);
	in_child("bad ids", bad);
	return 0;
}
