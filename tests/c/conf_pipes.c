/* Conformance: pipes, pipe2 flags, FIFOs, PIPE_BUF atomicity, SIGPIPE/EPIPE,
 * F_GETPIPE_SZ/F_SETPIPE_SZ, splice/tee/vmsplice.  Deterministic transcript.
 * Usage: conf_pipes SCRATCH   (SCRATCH: an empty directory) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transcript.h"


static volatile sig_atomic_t sigpipes;
static void on_pipe(int s) { (void)s; sigpipes++; }

int main(int argc, char **argv)
{
	int p[2], q[2], fd, st;
	char buf[8192];
	if (argc < 2 || chdir(argv[1])) return 2;
	setvbuf(stdout, 0, _IONBF, 0);
	alarm(20);

	printf("-- pipe basics\n");
	T(pipe(p));
	T(write(p[1], "abc", 3)); T(ioctl(p[0], FIONREAD, &st)); printf("FIONREAD=%d\n", st);
	T(read(p[0], buf, sizeof buf)); T(write(p[0], "x", 1)); T(read(p[1], buf, 1));
	T(fcntl(p[0], F_GETFL) & O_ACCMODE); T(fcntl(p[1], F_GETFL) & O_ACCMODE);
	T(lseek(p[0], 0, SEEK_CUR));
	struct stat sb; T(fstat(p[0], &sb)); printf("S_ISFIFO=%d\n", S_ISFIFO(sb.st_mode));
	close(p[1]); T(read(p[0], buf, sizeof buf)); close(p[0]);

	printf("-- pipe2 flags\n");
	T(pipe2(p, O_CLOEXEC | O_NONBLOCK));
	T(fcntl(p[0], F_GETFD) & FD_CLOEXEC); T(fcntl(p[1], F_GETFD) & FD_CLOEXEC);
	T(!!(fcntl(p[0], F_GETFL) & O_NONBLOCK)); T(!!(fcntl(p[1], F_GETFL) & O_NONBLOCK));
	T(read(p[0], buf, 1));
	T(fcntl(p[0], F_GETPIPE_SZ));
	int n = 0; long w;
	while ((w = write(p[1], buf, sizeof buf)) > 0) n += w;
	printf("filled nonblocking pipe with %d bytes, then %s\n", n, strerrorname_np(errno));
	T(write(p[1], "x", 1));
	close(p[0]); close(p[1]);
	T(pipe2(p, 0x1)); T(pipe2(p, O_RDWR)); T(pipe2((int *)0, 0));
	T(pipe2(p, O_DIRECT));
	T(write(p[1], "one", 3)); T(write(p[1], "two!", 4));
	T(read(p[0], buf, sizeof buf)); T(read(p[0], buf, 2)); T(write(p[1], "x", 1));
	close(p[0]); close(p[1]);

	printf("-- pipe size\n");
	T(pipe(p));
	T(fcntl(p[0], F_GETPIPE_SZ)); T(fcntl(p[1], F_SETPIPE_SZ, 4096)); T(fcntl(p[0], F_GETPIPE_SZ));
	T(fcntl(p[1], F_SETPIPE_SZ, 5000)); T(fcntl(p[1], F_SETPIPE_SZ, 1));
	T(fcntl(p[1], F_SETPIPE_SZ, 1 << 20)); T(fcntl(p[1], F_SETPIPE_SZ, 0));
	T(fcntl(p[1], F_SETPIPE_SZ, -1));
	T(fcntl(p[0], F_SETPIPE_SZ, 65536));
	T(write(p[1], buf, 6000)); T(fcntl(p[0], F_SETPIPE_SZ, 4096));
	close(p[0]); close(p[1]);
	fd = open("plain", O_CREAT | O_RDWR, 0644); T(fcntl(fd, F_GETPIPE_SZ)); close(fd);

	printf("-- FIFOs\n");
	T(mkfifo("fifo", 0600)); T(mkfifo("fifo", 0600)); T(mkfifo("nodir/fifo", 0600));
	T(stat("fifo", &sb)); printf("S_ISFIFO=%d mode=%o\n", S_ISFIFO(sb.st_mode), sb.st_mode & 07777);
	T(open("fifo", O_WRONLY | O_NONBLOCK));
	int r = open("fifo", O_RDONLY | O_NONBLOCK); T(r >= 0);
	T(read(r, buf, sizeof buf));
	int wfd = open("fifo", O_WRONLY | O_NONBLOCK); T(wfd >= 0);
	T(write(wfd, "via fifo", 8)); T(read(r, buf, sizeof buf));
	T(read(r, buf, sizeof buf));
	close(wfd); T(read(r, buf, sizeof buf)); close(r);
	int rw = open("fifo", O_RDWR | O_NONBLOCK); T(rw >= 0); close(rw);
	/* blocking opens rendezvous with a second process */
	pid_t c = fork();
	if (c == 0) {
		int w2 = open("fifo", O_WRONLY);
		write(w2, "from child", 10);
		_exit(w2 >= 0 ? 0 : 1);
	}
	r = open("fifo", O_RDONLY); T(r >= 0);
	memset(buf, 0, sizeof buf);
	long got = 0, k;
	while ((k = read(r, buf + got, sizeof buf - got)) > 0) got += k;
	printf("fifo read %ld bytes: %.*s\n", got, (int)got, buf);
	close(r); waitpid(c, &st, 0); status("fifo writer", st);
	T(unlink("fifo"));

	printf("-- PIPE_BUF atomicity\n");
	printf("PIPE_BUF=%d\n", PIPE_BUF);
	pipe(p);
	enum { WRITERS = 4, BLOCKS = 64 };
	for (int i = 0; i < WRITERS; i++) {
		if (fork() == 0) {
			char blk[PIPE_BUF];
			memset(blk, 'A' + i, sizeof blk);
			close(p[0]);
			for (int j = 0; j < BLOCKS; j++)
				if (write(p[1], blk, sizeof blk) != sizeof blk) _exit(1);
			_exit(0);
		}
	}
	close(p[1]);
	static char all[WRITERS * BLOCKS * PIPE_BUF];
	size_t total = 0;
	while ((k = read(p[0], all + total, sizeof all - total)) > 0) total += k;
	close(p[0]);
	int mixed = 0, per[WRITERS] = { 0 };
	for (size_t b = 0; b + PIPE_BUF <= total; b += PIPE_BUF) {
		char ch = all[b];
		for (int i = 1; i < PIPE_BUF; i++) if (all[b + i] != ch) { mixed++; break; }
		if (ch >= 'A' && ch < 'A' + WRITERS) per[ch - 'A']++;
	}
	int ok = 0;
	while (wait(&st) > 0) ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
	printf("total=%zu mixed blocks=%d writers ok=%d per-writer=%d,%d,%d,%d\n", total, mixed, ok, per[0], per[1], per[2], per[3]);

	printf("-- SIGPIPE and EPIPE\n");
	c = fork();
	if (c == 0) {
		int pp[2]; pipe(pp); close(pp[0]);
		write(pp[1], "x", 1);
		_exit(0);
	}
	waitpid(c, &st, 0); status("writer to closed pipe, default action", st);
	signal(SIGPIPE, on_pipe);
	pipe(p); close(p[0]);
	T(write(p[1], "x", 1)); printf("SIGPIPE handled %d times\n", sigpipes);
	signal(SIGPIPE, SIG_IGN);
	T(write(p[1], "x", 1)); printf("SIGPIPE handled %d times\n", sigpipes);
	close(p[1]);
	sigset_t set; sigemptyset(&set); sigaddset(&set, SIGPIPE);
	signal(SIGPIPE, SIG_DFL); sigprocmask(SIG_BLOCK, &set, 0);
	pipe(p); close(p[0]);
	T(write(p[1], "x", 1)); sigset_t pend; sigpending(&pend); printf("SIGPIPE pending: %d\n", sigismember(&pend, SIGPIPE));
	struct timespec zero = { 0, 0 }; siginfo_t si;
	T(sigtimedwait(&set, &si, &zero)); printf("si_code=%d\n", si.si_code);
	sigprocmask(SIG_UNBLOCK, &set, 0);
	close(p[1]);

	printf("-- splice / tee / vmsplice\n");
	fd = open("src", O_CREAT | O_RDWR | O_TRUNC, 0644);
	write(fd, "0123456789abcdefghij", 20);
	pipe(p); pipe(q);
	loff_t off = 5;
	T(splice(fd, &off, p[1], 0, 10, 0)); printf("off=%ld\n", (long)off);
	T(lseek(fd, 0, SEEK_CUR));
	T(tee(p[0], q[1], 100, 0));
	T(read(q[0], buf, sizeof buf)); printf("tee copy: %.10s\n", buf);
	int out = open("dst", O_CREAT | O_RDWR | O_TRUNC, 0644);
	T(splice(p[0], 0, out, 0, 100, 0));
	T(pread(out, buf, sizeof buf, 0)); printf("dst: %.10s\n", buf);
	T(splice(fd, 0, out, 0, 5, 0));
	T(tee(fd, q[1], 5, 0));
	T(splice(p[0], 0, out, 0, 5, SPLICE_F_NONBLOCK));
	T(tee(p[0], q[1], 5, SPLICE_F_NONBLOCK));
	lseek(fd, 0, SEEK_SET);
	T(splice(fd, 0, p[1], 0, 4, 0)); T(read(p[0], buf, sizeof buf)); printf("from file position: %.4s\n", buf);
	T(lseek(fd, 0, SEEK_CUR));
	off = 0; T(splice(p[0], &off, out, 0, 1, 0));
	char v1[] = "vm", v2[] = "splice";
	struct iovec iov[2] = { { v1, 2 }, { v2, 6 } };
	T(vmsplice(q[1], iov, 2, 0));
	T(read(q[0], buf, sizeof buf)); printf("vmsplice: %.8s\n", buf);
	T(vmsplice(fd, iov, 2, 0));
	/* vmsplice from a pipe's read end into user memory */
	write(q[1], "back", 4);
	char back[8] = { 0 }; struct iovec bi = { back, 8 };
	T(vmsplice(q[0], &bi, 1, 0)); printf("vmsplice read: %s\n", back);
	close(fd); close(out);
	for (int i = 0; i < 2; i++) { close(p[i]); close(q[i]); }

	printf("-- pipes and fork\n");
	pipe(p);
	c = fork();
	if (c == 0) { close(p[0]); dup2(p[1], 1); execl("/bin/echo", "echo", "exec'd echo through a pipe", (char *)0); _exit(127); }
	close(p[1]);
	got = 0; while ((k = read(p[0], buf + got, sizeof buf - got)) > 0) got += k;
	printf("read %ld: %.*s", got, (int)got, buf);
	waitpid(c, &st, 0); status("echo", st);
	close(p[0]);
	return 0;
}
