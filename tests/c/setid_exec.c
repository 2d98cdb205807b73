/* setid_exec: set-id programs.
 *   (any name)                 print the ids, AT_SECURE and a few variables
 *   as UID GID [-nnp] PROG ARGS...  (installed under the name "as")
 *                              become UID/GID (no supplementary groups),
 *                              with -nnp set no_new_privs, then exec PROG */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <libgen.h>

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v ? v : "-";
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(basename(argv[0]), "as")) {
		uid_t uid = atoi(argv[1]);
		gid_t gid = atoi(argv[2]);
		if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) {
			perror("set ids");
			return 1;
		}
		if (!strcmp(argv[3], "-nnp")) {
			prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
			argv++;
		}
		execv(argv[3], argv + 3);
		perror("execv");
		return 127;
	}
	uid_t r, e, s;
	gid_t rg, eg, sg;
	getresuid(&r, &e, &s);
	getresgid(&rg, &eg, &sg);
	printf("uid %u %u %u gid %u %u %u secure %lu nnp %d LD_LIBRARY_PATH=%s TMPDIR=%s HOME=%s\n",
	       r, e, s, rg, eg, sg, getauxval(AT_SECURE), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
	       env("LD_LIBRARY_PATH"), env("TMPDIR"), env("HOME"));
	/* whether it holds capabilities (effective, permitted): the sets
	 * themselves are the bounding set's, which the sandbox's is not */
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "CapEff", 6) || !strncmp(line, "CapPrm", 6))
			printf("%.6s %s\n", line, strtoull(line + 7, NULL, 16) ? "some" : "none");
	if (f)
		fclose(f);
	return 0;
}
