/* The calls whose arguments --strace decodes, each once, for tests/test_strace.py
 * to compare with strace's own lines: paths, open flags and modes, stat, iovec,
 * sockaddr, open_how, sigaction, timespec, errno results.  Run in a directory
 * it may write in. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

static void on_usr1(int sig) { (void)sig; }

int main(void)
{
	struct stat st;
	int fd = open("demo.txt", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	struct iovec iov[2] = { { "hello ", 6 }, { "world\n\t\"\\\001", 11 } };
	writev(fd, iov, 2);
	fstat(fd, &st);
	close(fd);
	stat("demo.txt", &st);
	lstat("/no/such/file", &st);
	access("demo.txt", R_OK | W_OK);
	mkdir("demo.d", 0755);
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY, .resolve = RESOLVE_BENEATH };
	fd = syscall(SYS_openat2, AT_FDCWD, "demo.d", &how, sizeof how);
	close(fd);
	char buf[64];
	fd = openat(AT_FDCWD, "demo.txt", O_RDONLY);
	read(fd, buf, sizeof buf);
	close(fd);
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaction(SIGUSR1, &sa, NULL);
	struct timespec ts = { 0, 1000 };
	nanosleep(&ts, NULL);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	strcpy(un.sun_path, "no-such.sock");
	connect(s, (struct sockaddr *)&un, sizeof un);
	close(s);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(9) };
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	sendto(s, "ping", 4, 0, (struct sockaddr *)&in, sizeof in);
	close(s);
	unlink("demo.txt");
	rmdir("demo.d");
	write(1, "done\n", 5);
	return 0;
}
