/* Keep-caps, securebits, the ambient and bounding sets (credentials(7),
 * capabilities(7), prctl(2)): run as root natively and as the sandbox's
 * root in sentry, each case in a child; the transcript must be the same.
 * Capability masks are printed for caps 0-15 only (root's full set differs
 * between hosts).  `creds_keepcaps show` prints the state after an execve. */
#include "transcript.h"
#include <stdlib.h>
#include <sys/prctl.h>
#include <linux/securebits.h>

#define LOW 0xffffu
static const char *self;

static void caps(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	syscall(SYS_capget, &h, d);
}

static long set_caps(unsigned eff, unsigned prm, unsigned inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	caps(d);
	d[0].effective = eff; d[0].permitted = prm; d[0].inheritable = inh;
	d[1].effective &= d[1].permitted;
	return syscall(SYS_capset, &h, d);
}

static void show(const char *when)
{
	struct __user_cap_data_struct d[2];
	uid_t r, e, s;
	caps(d);
	getresuid(&r, &e, &s);
	unsigned long amb = 0;
	for (int c = 0; c < 16; c++)
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1) amb |= 1ul << c;
	printf("%s: uid %d/%d/%d eff %04x prm %04x inh %04x amb %04lx keep %d secure %#x bnd-net_raw %d\n",
	       when, r, e, s, d[0].effective & LOW, d[0].permitted & LOW, d[0].inheritable & LOW, amb,
	       prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0), prctl(PR_GET_SECUREBITS, 0, 0, 0, 0),
	       prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0));
	/* /proc/self/status must agree with capget and prctl */
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f)) {
		unsigned long long v;
		char key[16];
		if (sscanf(line, "%15[^:]:%llx", key, &v) == 2 && !strncmp(key, "Cap", 3) && strcmp(key, "CapBnd"))
			printf("  %s %04llx\n", key, v & LOW);
	}
	if (f) fclose(f);
}

static void exec_show(void)
{
	fflush(stdout);
	execl(self, self, "show", (char *)NULL);
	printf("exec: %s\n", strerrorname_np(errno));
}

static void in_child(const char *name, void (*fn)(void))
{
	printf("-- %s\n", name);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) { fn(); exit(0); }
	int st;
	waitpid(c, &st, 0);
	status(name, st);
}

static void keepcaps(void)
{
	T(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
	T(prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0));
	T(syscall(SYS_prctl, PR_SET_KEEPCAPS, 0x100000001ul, 0, 0, 0));   /* unsigned long: all 64 bits */
	T(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
	T(syscall(SYS_prctl, (1ul << 32) | PR_GET_KEEPCAPS, 0, 0, 0, 0));   /* option is an int */
	show("keep-caps set");
	T(setresuid(1000, 1000, 1000));
	show("after setresuid(1000) with keep-caps");
	T(set_caps(1u << CAP_NET_BIND_SERVICE | 1u << CAP_CHOWN, 1u << CAP_NET_BIND_SERVICE | 1u << CAP_CHOWN, 0));
	show("effective raised again");
	T(setuid(0));
	exec_show();
}

static void no_keepcaps(void)
{
	T(setuid(1000));
	show("after setuid(1000)");
	exec_show();
}

static void ambient(void)
{
	T(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
	T(set_caps(LOW, LOW, 1u << CAP_NET_BIND_SERVICE | 1u << CAP_KILL));
	T(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
	T(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
	T(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, 64, 0, 0));
	T(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 1, 0));
	T(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0));
	T(prctl(PR_CAP_AMBIENT, 9, CAP_KILL, 0, 0));
	T(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_KILL, 0, 0));
	show("ambient net_bind_service");
	/* capset shrinks the ambient set to permitted & inheritable */
	T(set_caps(LOW, LOW, 1u << CAP_NET_BIND_SERVICE));
	T(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
	T(setresuid(1000, 1000, 1000));           /* leaving root clears the ambient set */
	show("as 1000");
	T(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
	exec_show();
}

static void ambient_locked(void)
{
	T(set_caps(LOW, LOW, 1u << CAP_KILL));
	T(prctl(PR_SET_SECUREBITS, SECBIT_NO_CAP_AMBIENT_RAISE, 0, 0, 0));
	T(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
	T(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
}

static void securebits(void)
{
	T(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
	T(prctl(PR_SET_SECUREBITS, 1 << 12, 0, 0, 0));
	T(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0));
	T(prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0));
	T(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS, 0, 0, 0));        /* unlocking */
	T(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0)); /* a locked bit */
	T(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP, 0, 0, 0));
	T(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
	/* no fix-up: the effective set stays with a non-root euid */
	T(seteuid(1000));
	show("seteuid(1000), no fix-up");
	T(seteuid(0));
	/* without CAP_SETPCAP nothing changes */
	T(set_caps(LOW & ~(1u << CAP_SETPCAP), LOW & ~(1u << CAP_SETPCAP), 0));
	T(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP, 0, 0, 0));
	T(prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0));
	exec_show();
}

static void noroot(void)
{
	T(prctl(PR_SET_SECUREBITS, SECBIT_NOROOT, 0, 0, 0));
	T(set_caps(LOW, LOW, 1u << CAP_CHOWN));
	exec_show();        /* root gains only its inheritable set */
}

static void bounding(void)
{
	T(prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0));
	T(prctl(PR_CAPBSET_READ, 64, 0, 0, 0));
	T(prctl(PR_CAPBSET_DROP, 64, 0, 0, 0));
	T(prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0));
	T(prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0));
	/* no inheritable capability outside the bounding set */
	T(set_caps(LOW, LOW, 1u << CAP_NET_RAW));
	T(set_caps(LOW & ~(1u << CAP_NET_RAW), LOW & ~(1u << CAP_NET_RAW), 0));
	exec_show();        /* root's permitted set is the bounding set */
}

int main(int argc, char **argv)
{
	self = argv[0];
	setvbuf(stdout, 0, _IONBF, 0);
	if (argc > 1 && !strcmp(argv[1], "show")) {
		show("after execve");
		return 0;
	}
	show("start");
	in_child("keep-caps", keepcaps);
	in_child("no keep-caps", no_keepcaps);
	in_child("ambient", ambient);
	in_child("no ambient raise", ambient_locked);
	in_child("securebits", securebits);
	in_child("noroot", noroot);
	in_child("bounding set", bounding);
	return 0;
}
