/* regs_kept: calls the Sentry rewrites (to staged arguments, or host ids),
 * made by raw `syscall` instructions that declare their argument registers
 * unchanged, as Linux keeps them (all but rax, rcx, r11): each line says
 * whether every argument register came back as it went in. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void call6(const char *what, long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	long d1 = a1, d2 = a2, d3 = a3;
	__asm__ volatile ("syscall"
			  : "=a"(ret), "+D"(d1), "+S"(d2), "+d"(d3), "+r"(r10), "+r"(r8), "+r"(r9)
			  : "a"(nr) : "rcx", "r11", "memory");
	int kept = d1 == a1 && d2 == a2 && d3 == a3 && r10 == a4 && r8 == a5 && r9 == a6;
	printf("%s: %s %s\n", what, ret >= 0 ? "ok" : "failed", kept ? "kept" : "CHANGED");
}

int main(void)
{
	struct stat st;
	call6("open", SYS_open, (long)"/etc/hostname", O_RDONLY, 0, 11, 12, 13);
	call6("openat", SYS_openat, AT_FDCWD, (long)"/etc/hostname", O_RDONLY, 0, 12, 13);
	call6("openat /proc", SYS_openat, AT_FDCWD, (long)"/proc/self/status", O_RDONLY, 0, 12, 13);
	call6("fstatat empty", SYS_newfstatat, 1, (long)"", (long)&st, AT_EMPTY_PATH, 12, 13);
	call6("kill", SYS_kill, getpid(), 0, 3, 11, 12, 13);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	call6("sendto", SYS_sendto, s, (long)"x", 1, 0, (long)&sin, sizeof sin);
	/* a bind Python rewrites; connects C answers (native/fastnet.c) */
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof any;
	call6("bind", SYS_bind, l, (long)&any, sizeof any, 11, 12, 13);
	getsockname(l, (void *)&any, &len);
	listen(l, 1);
	call6("connect tcp", SYS_connect, c, (long)&any, sizeof any, 11, 12, 13);
	call6("connect udp", SYS_connect, s, (long)&sin, sizeof sin, 11, 12, 13);
	return 0;
}
