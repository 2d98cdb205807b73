/* The fd handover of an open past the mode bits, raced: the main thread
 * opens w/d/secret (mode 000: as root in the sandbox, the Sentry opens it
 * and hands the fd over) again and again, while one thread dup2()s and
 * closes the low fd numbers and another swaps w/d for symlinks to argv[1]
 * (a host directory with a secret of its own: absolute, and relative with
 * enough ".." to leave any root).  Every fd the main thread gets must be
 * the sandbox's file (or /dev/null, dup2()ed over it meanwhile), never the
 * host's; no fd may be left behind but the ones it holds.
 * Prints "ok=N null=N err=N bad=N leak=N". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;
static int nullfd;
static char abs_link[4096], rel_link[4096];

static void *dupper(void *arg)
{
	(void)arg;
	while (!stop)
		for (int k = 3; k < 12; k++) {
			if (k == nullfd) continue;
			dup2(nullfd, k);
			close(k);
		}
	return NULL;
}

static void *swapper(void *arg)
{
	(void)arg;
	for (unsigned i = 0; !stop; i++) {
		if (rename("w/d", "w/d.real")) continue;
		symlink(i & 1 ? abs_link : rel_link, "w/d");
		sched_yield();
		unlink("w/d");
		rename("w/d.real", "w/d");
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) return 2;
	double seconds = atof(argv[2]);
	snprintf(abs_link, sizeof abs_link, "%s", argv[1]);
	snprintf(rel_link, sizeof rel_link, "../../../../../../../../../..%s", argv[1]);
	struct stat want, null_st, st;
	if (stat("w/d/secret", &want)) { perror("w/d/secret"); return 2; }
	nullfd = open("/dev/null", O_RDONLY);
	fstat(nullfd, &null_st);
	pthread_t a, b;
	pthread_create(&a, NULL, dupper, NULL);
	pthread_create(&b, NULL, swapper, NULL);
	long ok = 0, null = 0, err = 0, bad = 0, leak = 0;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < 50; i++) {
			int fd = open("w/d/secret", O_RDONLY);
			if (fd < 0) { err++; continue; }
			char buf[16] = {0};
			if (fstat(fd, &st)) { err++; continue; }      /* closed by the dupper */
			if (st.st_dev == want.st_dev && st.st_ino == want.st_ino) ok++;
			else if (st.st_dev == null_st.st_dev && st.st_ino == null_st.st_ino) null++;
			else {
				ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
				printf("BAD fd %d: dev %lu ino %lu read %zd \"%s\"\n", fd, (unsigned long)st.st_dev,
				       (unsigned long)st.st_ino, n, n > 0 ? buf : "");
				bad++;
			}
			close(fd);
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec + (t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
	stop = 1;
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	while (dir && (e = readdir(dir))) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd <= 2 || fd == nullfd || fd == dirfd(dir)) continue;
		char target[256] = "";
		char p[64];
		snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
		readlink(p, target, sizeof target - 1);
		printf("LEAK fd %d -> %s\n", fd, target);
		leak++;
	}
	printf("ok=%ld null=%ld err=%ld bad=%ld leak=%ld\n", ok, null, err, bad, leak);
	return 0;
}
