/* Conformance: user and group ids, supplementary groups, uname, hostname,
 * process ids as relations, sessions and process groups, a few prctl
 * attributes.  Nothing here changes host state: sethostname and friends are
 * never called (natively, as root, they would change the host's).
 * Usage: conf_identity SCRATCH */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transcript.h"



/* run fn in a child; its exit code is the transcript's */
static void in_child(const char *what, int (*fn)(void))
{
	pid_t c = fork();
	if (c == 0) _exit(fn());
	int st; waitpid(c, &st, 0); status(what, st);
}

/* as the capability predicts: 0 when the call's result matches what our
 * capability set (read before the call) says: success with it, EPERM without */
static int predict(int had, long r) { return had ? (r == 0 ? 0 : 1) : (r == -1 && errno == EPERM ? 0 : 2); }
static int try_setuid(void)
{
	int had = has_cap(CAP_SETUID);
	int bad = predict(had, setuid(65534));
	return bad ? bad : getuid() == (had ? 65534u : 0u) ? 0 : 3;
}
static int try_setgid(void) { int had = has_cap(CAP_SETGID); return predict(had, setgid(65534)); }
static int try_setgroups(void) { gid_t g = 65534; int had = has_cap(CAP_SETGID); return predict(had, setgroups(1, &g)); }
static int try_setresuid_same(void) { return setresuid(0, 0, 0) == 0 && setreuid(-1, -1) == 0 ? 0 : 1; }
static int try_seteuid_self(void) { return seteuid(geteuid()) == 0 ? 0 : 1; }
static int try_setsid(void)
{
	pid_t s = setsid();
	if (s != getpid()) return 1;
	if (getsid(0) != getpid() || getpgrp() != getpid()) return 2;
	if (setsid() != -1 || errno != EPERM) return 3;
	if (setpgid(0, 0) != -1 || errno != EPERM) return 4;
	return 0;
}
static int drop_all_groups(void) { int had = has_cap(CAP_SETGID); return predict(had, setgroups(0, 0)); }

int main(int argc, char **argv)
{
	if (argc < 2 || chdir(argv[1])) return 2;
	setvbuf(stdout, 0, _IONBF, 0);
	alarm(20);

	printf("-- ids\n");
	printf("uid=%d euid=%d gid=%d egid=%d\n", (int)getuid(), (int)geteuid(), (int)getgid(), (int)getegid());
	uid_t r, e, s; gid_t rg, eg, sg;
	T(getresuid(&r, &e, &s)); printf("resuid=%d,%d,%d\n", (int)r, (int)e, (int)s);
	T(getresgid(&rg, &eg, &sg)); printf("resgid=%d,%d,%d\n", (int)rg, (int)eg, (int)sg);
	gid_t groups[64];
	int n = getgroups(64, groups); printf("getgroups: %d:", n);
	for (int i = 0; i < n; i++) printf(" %d", (int)groups[i]);
	printf("\n");
	T(getgroups(0, 0) == n);
	if (n > 0) T(getgroups(n - 1 > 0 ? n - 1 : 0, groups) == (n > 1 ? -1 : n)); else printf("no groups\n");
	T(syscall(SYS_setfsuid, -1)); T(syscall(SYS_setfsgid, -1));

	printf("-- changing ids (in children)\n");
	in_child("setresuid(0,0,0) and setreuid(-1,-1)", try_setresuid_same);
	in_child("seteuid(geteuid())", try_seteuid_self);
	in_child("setuid(65534) as CAP_SETUID predicts", try_setuid);
	in_child("setgid(65534) as CAP_SETGID predicts", try_setgid);
	in_child("setgroups({65534}) as CAP_SETGID predicts", try_setgroups);
	in_child("setgroups(0) as CAP_SETGID predicts", drop_all_groups);
	printf("effective capabilities: %s\n", has_cap(CAP_CHOWN) || has_cap(CAP_DAC_OVERRIDE) || has_cap(CAP_KILL) || has_cap(CAP_SETUID) ? "some" : "none");

	printf("-- uname and hostname\n");
	struct utsname u;
	T(uname(&u));
	printf("sysname=%s machine=%s release non-empty: %d version non-empty: %d\n", u.sysname, u.machine, u.release[0] != 0, u.version[0] != 0);
	char host[256] = "", dom[256] = "";
	T(gethostname(host, sizeof host)); printf("nodename == gethostname: %d, non-empty: %d\n", !strcmp(host, u.nodename), host[0] != 0);
	printf("nodename=%s\n", u.nodename);
	T(getdomainname(dom, sizeof dom)); printf("domainname == getdomainname: %d\n", !strcmp(dom, u.domainname));
	T(gethostname(host, 1));
	T(syscall(SYS_uname, (void *)8));
	/* sysfs(2): the file system types, as /proc/filesystems lists them */
	char fsname[64] = "";
	T(syscall(SYS_sysfs, 1, "proc") >= 0); T(syscall(SYS_sysfs, 2, 0, fsname)); printf("first type named: %d\n", fsname[0] != 0);
	T(syscall(SYS_sysfs, 3) > 0); T(syscall(SYS_sysfs, 1, "nosuchfs")); T(syscall(SYS_sysfs, 9));

	printf("-- process ids\n");
	pid_t pid = getpid(), ppid = getppid();
	printf("pid>0: %d ppid>0: %d pid!=ppid: %d gettid==pid: %d\n", pid > 0, ppid > 0, pid != ppid, gettid() == pid);
	printf("getpgid(0)==getpgrp(): %d getpgid(pid)==getpgrp(): %d getsid(0)>0: %d getsid(pid)==getsid(0): %d\n",
	       getpgid(0) == getpgrp(), getpgid(pid) == getpgrp(), getsid(0) > 0, getsid(pid) == getsid(0));
	T(getpgid(999999999)); T(getsid(999999999)); T(getpgid(-1));
	pid_t c = fork();
	if (c == 0) {
		int ok = getppid() == pid && getpid() != pid && getpgrp() == getpgid(pid) && getsid(0) == getsid(pid);
		_exit(ok ? 0 : 1);
	}
	int st; waitpid(c, &st, 0); status("child: ppid is parent, same group and session", st);
	in_child("setsid in a child", try_setsid);
	T(setpgid(0, 0)); printf("own group now: %d\n", getpgrp() == getpid());
	c = fork();
	if (c == 0) { pause(); _exit(0); }
	T(setpgid(c, c)); T(getpgid(c) == c); T(setpgid(c, pid)); T(getpgid(c) == pid);
	T(setpgid(c, 999999999)); T(setpgid(999999999, 0)); T(setpgid(0, -1));
	kill(c, SIGKILL); waitpid(c, &st, 0);

	printf("-- prctl\n");
	T(prctl(PR_GET_DUMPABLE)); T(prctl(PR_GET_KEEPCAPS)); T(prctl(PR_GET_PDEATHSIG, &st)); printf("pdeathsig=%d\n", st);
	T(prctl(PR_GET_CHILD_SUBREAPER, &st)); printf("subreaper=%d\n", st);
	char name[16] = ""; T(prctl(PR_GET_NAME, name)); printf("comm=%s\n", name);
	T(prctl(PR_SET_NAME, "renamed")); prctl(PR_GET_NAME, name); printf("comm=%s\n", name);
	T(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	T(prctl(9999));
	T(prctl(PR_CAPBSET_READ, CAP_CHOWN));
	return 0;
}
