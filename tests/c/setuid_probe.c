/* Installed setuid (owner 1000, mode 4755): must not gain that identity
 * or any capability under no_new_privs. */
#include <linux/capability.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	syscall(SYS_capget, &h, d);
	printf("ruid=%d euid=%d eff=%x prm=%x\n", getuid(), geteuid(), d[0].effective, d[0].permitted);
	return 0;
}
