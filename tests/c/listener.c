/* Ask for a seccomp user-notification listener with SECCOMP_SET_MODE_FILTER
 * spelled with high bits the kernel ignores.  A listener would let this
 * process answer its own calls "continue", past the Sentry's RET_TRACE. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof insns / sizeof *insns, insns };
	uint64_t ops[] = { 1, 0x100000001ULL, 0xffffffff00000001ULL };
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	for (int i = 0; i < 3; i++) {
		long fd = syscall(SYS_seccomp, ops[i], SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
		printf("op %#llx: %s\n", (unsigned long long)ops[i], fd >= 0 ? "LISTENER" : "refused");
	}
	return 0;
}
