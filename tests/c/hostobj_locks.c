/* File locks between processes, for a differential transcript: flock(2),
 * POSIX record locks (F_SETLK, F_SETLKW, F_GETLK) and open file description
 * locks (F_OFD_*).  At "held" the first process holds locks of each kind it
 * can and sleeps a second, so that the host can try the file meanwhile.
 *
 * Usage: hostobj_locks path PATH   PATH opened read-only, several times
 *        hostobj_locks stdin       fd 0, open read-write, shared by fork
 *        hostobj_locks threads PATH  the same on PATH opened read-write, by
 *                                  a process with a second thread
 *        hostobj_locks race PATH OWN  threads swap PATH (read-only) and OWN
 *                                  (the sandbox's) at one fd number while
 *                                  others lock and unlock through it, 3 s */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>
#include "transcript.h"

static pid_t parent;

static void say(const char *what)
{
	printf("%s\n", what);
	fflush(stdout);
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	return fcntl(fd, cmd, &fl);
}

/* F_GETLK / F_OFD_GETLK: what blocks a lock of this type and range */
static void getlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	if (fcntl(fd, cmd, &fl)) { printf("getlk: %s\n", strerrorname_np(errno)); return; }
	const char *who = fl.l_pid == parent ? "parent" : fl.l_pid == -1 ? "-1" : fl.l_pid == 0 ? "0" : "other";
	if (fl.l_type == F_UNLCK) printf("getlk [%ld,+%ld): unlocked\n", (long)start, (long)len);
	else printf("getlk [%ld,+%ld): %s [%ld,+%ld) by %s\n", (long)start, (long)len,
		    fl.l_type == F_RDLCK ? "read" : "write", (long)fl.l_start, (long)fl.l_len, who);
}

static int in_child(void (*fn)(int), int arg)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) { fn(arg); fflush(stdout); _exit(0); }
	int st;
	waitpid(pid, &st, 0);
	return st;
}

static const char *path;

static void child_flock(int unused)
{
	(void)unused;
	int fd = open(path, O_RDONLY);
	T(flock(fd, LOCK_EX | LOCK_NB));
	T(flock(fd, LOCK_SH | LOCK_NB));
	getlk(fd, F_GETLK, F_WRLCK, 0, 100);
	getlk(fd, F_GETLK, F_WRLCK, 20, 10);
	getlk(fd, F_OFD_GETLK, F_WRLCK, 0, 0);
	T(setlk(fd, F_SETLK, F_RDLCK, 0, 5));
	T(setlk(fd, F_OFD_SETLK, F_RDLCK, 0, 5));
}

static void child_shared(int unused)
{
	(void)unused;
	int fd = open(path, O_RDONLY);
	T(flock(fd, LOCK_SH | LOCK_NB));
	T(flock(fd, LOCK_EX | LOCK_NB));
}

static void child_waits(int fd_inherited)
{
	int fd = fd_inherited >= 0 ? fd_inherited : open(path, O_RDONLY);
	if (fd_inherited >= 0) {
		T(setlk(fd, F_SETLKW, F_WRLCK, 0, 10));
		say("child got the record lock");
		return;
	}
	T(flock(fd, LOCK_EX));
	say("child got the flock");
}

static void child_inherited(int fd)
{
	T(flock(fd, LOCK_EX | LOCK_NB));          /* the same open file description */
	int other = open(path, O_RDONLY);
	T(flock(other, LOCK_EX | LOCK_NB));
	close(other);
}

static void path_mode(void)
{
	int fd = open(path, O_RDONLY);
	T(fd >= 0);
	T(flock(fd, LOCK_EX));
	T(setlk(fd, F_SETLK, F_RDLCK, 0, 10));
	int ofd = open(path, O_RDONLY);
	T(setlk(ofd, F_OFD_SETLK, F_RDLCK, 50, 10));
	say("held");
	sleep(1);
	in_child(child_flock, 0);
	in_child(child_inherited, fd);
	T(flock(fd, LOCK_SH));
	in_child(child_shared, 0);
	/* a waiter: it gets the lock once the holder lets go */
	T(flock(fd, LOCK_EX));
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) { child_waits(-1); fflush(stdout); _exit(0); }
	usleep(300000);
	say("parent unlocks");
	flock(fd, LOCK_UN);                     /* silent: the child may print first */
	int st;
	waitpid(pid, &st, 0);
	/* closing the last fd of a description releases its flock */
	T(setlk(fd, F_SETLK, F_UNLCK, 0, 0));
	T(flock(fd, LOCK_EX));
	close(fd);
	in_child(child_shared, 0);
	fd = open(path, O_RDONLY);
	struct flock bad = { .l_type = F_RDLCK, .l_pid = 1 };
	T(fcntl(ofd, F_OFD_SETLK, &bad));             /* OFD locks take l_pid 0 */
	bad.l_type = 7;
	bad.l_pid = 0;
	T(fcntl(fd, F_SETLK, &bad));
	T(flock(fd, 64));
	T(setlk(fd, F_SETLK, F_WRLCK, 0, 1));         /* a read-only fd */
	T(setlk(ofd, F_OFD_SETLK, F_UNLCK, 0, 0));
	T(setlk(ofd, F_OFD_SETLK, F_RDLCK, 0, 0));
	T(setlk(fd, F_SETLK, F_RDLCK, 0, 10));
	in_child(child_flock, 0);
	/* closing its fds on the file releases the process's record locks
	 * (Linux: closing any of them; sentry: the last, see README) */
	close(ofd);
	close(fd);
	in_child(child_flock, 0);
}

static void child_records(int fd)
{
	T(setlk(fd, F_SETLK, F_RDLCK, 5, 1));
	getlk(fd, F_GETLK, F_RDLCK, 0, 0);
	getlk(fd, F_GETLK, F_WRLCK, 10, 10);
	getlk(fd, F_GETLK, F_WRLCK, 15, 20);
	getlk(fd, F_GETLK, F_RDLCK, 100, 0);
	T(flock(fd, LOCK_EX | LOCK_NB));           /* fd 0's description, shared */
}

static void *idle(void *arg)
{
	for (;;) pause();
	return arg;
}

static void stdin_mode(int fd)
{
	T(setlk(fd, F_SETLK, F_WRLCK, 0, 100));
	T(setlk(fd, F_SETLK, F_UNLCK, 10, 10));   /* splits it: [0,10) and [20,100) */
	T(flock(fd, LOCK_EX));
	say("held");
	sleep(1);
	in_child(child_records, fd);
	T(setlk(fd, F_SETLK, F_UNLCK, 0, 0));
	T(setlk(fd, F_SETLK, F_WRLCK, 0, 10));
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) { child_waits(fd); fflush(stdout); _exit(0); }
	usleep(300000);
	say("parent unlocks");
	setlk(fd, F_SETLK, F_UNLCK, 0, 10);
	int st;
	waitpid(pid, &st, 0);
	getlk(fd, F_GETLK, F_WRLCK, 0, 0);          /* the child's went with it */
}

/* ---- race: one fd number, two files ---------------------------------------- */

static int target, host_fd, own_fd;
static volatile int stop;

static void *swapper(void *arg)
{
	(void)arg;
	while (!stop) {
		dup2(host_fd, target);
		dup2(own_fd, target);
	}
	return 0;
}

static void *locker(void *arg)
{
	long kind = (long)arg, ok = 0;
	while (!stop) {
		int r;
		if (kind == 0) { r = flock(target, LOCK_SH | LOCK_NB); flock(target, LOCK_UN); }
		else if (kind == 1) { r = setlk(target, F_SETLK, F_RDLCK, 0, 0); setlk(target, F_SETLK, F_UNLCK, 0, 0); }
		else { r = setlk(target, F_OFD_SETLK, F_RDLCK, 0, 0); setlk(target, F_OFD_SETLK, F_UNLCK, 0, 0); }
		ok += r == 0;
	}
	return (void *)ok;
}

static void race_mode(const char *own)
{
	host_fd = open(path, O_RDONLY);
	own_fd = open(own, O_RDONLY);
	target = dup(own_fd);
	pthread_t t[4];
	pthread_create(&t[0], 0, swapper, 0);
	for (long k = 0; k < 3; k++) pthread_create(&t[k + 1], 0, locker, (void *)k);
	sleep(3);
	stop = 1;
	long ok = 0;
	pthread_join(t[0], 0);
	for (int k = 1; k < 4; k++) { void *r; pthread_join(t[k], &r); ok += (long)r; }
	printf("race: locked %s\n", ok ? "some" : "none");
}

int main(int argc, char **argv)
{
	parent = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "path")) { path = argv[2]; path_mode(); return 0; }
	if (argc == 2 && !strcmp(argv[1], "stdin")) { stdin_mode(0); return 0; }
	if (argc == 3 && !strcmp(argv[1], "threads")) {
		pthread_t t;
		pthread_create(&t, 0, idle, 0);
		int fd = open(argv[2], O_RDWR);
		stdin_mode(fd);
		printf("closing\n");
		close(fd);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "race")) { path = argv[2]; race_mode(argv[3]); return 0; }
	return 2;
}
