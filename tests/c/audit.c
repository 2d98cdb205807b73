/* What --audit must record: calls the policy denies (bpf, kexec_load), a
 * refused fsopen and ptrace, a mount made, set*id changes (one granted, one refused), a
 * connect to a host socket refused (argv[1], if given), a fork whose child
 * exits 3, and its own exit. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	printf("bpf %ld\n", syscall(SYS_bpf, 0, 0, 0));
	printf("kexec_load %ld\n", syscall(SYS_kexec_load, 0, 0, 0, 0));
	printf("fsopen %ld\n", syscall(SYS_fsopen, "tmpfs", 0));
	printf("mount %ld\n", syscall(SYS_mount, "none", "/mnt", "tmpfs", 0, 0));
	printf("ptrace %ld\n", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0));
	if (argc > 1) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		printf("connect %d\n", connect(s, (struct sockaddr *)&a, sizeof a));
	}
	printf("setuid %d\n", setuid(1000));
	printf("setuid %d\n", setuid(0));       /* refused: no CAP_SETUID any more */
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) _exit(3);
	int status;
	waitpid(p, &status, 0);
	printf("child %d\n", WEXITSTATUS(status));
	return 0;
}
