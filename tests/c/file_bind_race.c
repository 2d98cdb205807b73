/* Races the host file behind a mount of a single file.  Usage:
 * file_bind_race DIR FILE OUTSIDE SECONDS
 *
 * FILE is a mount of DIR/f alone; DIR is the same host directory mounted
 * whole, so the guest can change what DIR/f is: a flipper thread turns it
 * into a symlink to OUTSIDE (a host path beside the sandbox), a relative
 * symlink out of the host directory, a directory, and back into a regular
 * file holding "decoy".  Reader threads open, stat and write through FILE
 * meanwhile.  Prints how many reads saw the decoy, saw an empty file (the
 * sandbox's own /secret, which the O_CREAT reader made through the relative
 * symlink, as Linux would), failed, and saw anything else (a host file the
 * sandbox does not hold). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char f[4096], real[4096], abs_link[4096], rel_link[4096], dir[4096];
static const char *file, *outside;
static volatile int stop;
static long decoy, own, failed, other;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *flipper(void *arg)
{
	for (unsigned i = 0; !stop; i++) {
		/* each state in its turn at DIR/f, renamed into place (atomic) */
		rename(real, f);
		if (i % 8 == 0) usleep(200);
		rename(f, real);
		symlink(outside, abs_link);
		rename(abs_link, f);
		if (i % 8 == 2) usleep(200);
		symlink("../../secret", rel_link);
		rename(rel_link, f);
		if (i % 8 == 4) usleep(200);
		unlink(f);
		mkdir(dir, 0755);
		rename(dir, f);
		if (i % 8 == 6) usleep(200);
		rmdir(f);
	}
	return arg;
}

static void *reader(void *arg)
{
	char buf[64];
	while (!stop) {
		int fd = open(file, (long)arg ? O_RDWR | O_CREAT : O_RDONLY, 0644);
		struct stat st;
		stat(file, &st);
		pthread_mutex_lock(&mu);
		if (fd < 0) {
			failed++;
		} else {
			ssize_t n = read(fd, buf, sizeof buf - 1);
			buf[n > 0 ? n : 0] = 0;
			if (n < 0) failed++;
			else if (n == 0) own++;
			else if (!strcmp(buf, "decoy\n")) decoy++;
			else { other++; fprintf(stderr, "read other: %s\n", buf); }
			close(fd);
		}
		pthread_mutex_unlock(&mu);
	}
	return arg;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: file_bind_race DIR FILE OUTSIDE SECONDS\n");
		return 2;
	}
	file = argv[2];
	outside = argv[3];
	snprintf(f, sizeof f, "%s/f", argv[1]);
	snprintf(real, sizeof real, "%s/real", argv[1]);
	snprintf(abs_link, sizeof abs_link, "%s/abs", argv[1]);
	snprintf(rel_link, sizeof rel_link, "%s/rel", argv[1]);
	snprintf(dir, sizeof dir, "%s/dir", argv[1]);
	/* DIR/f is the decoy to begin with; keep a twin to rename back */
	if (link(f, real)) {
		perror("link");
		return 2;
	}
	unlink(f);
	pthread_t t[4];
	pthread_create(&t[0], NULL, flipper, NULL);
	for (long i = 1; i < 4; i++) pthread_create(&t[i], NULL, reader, (void *)(long)(i == 3));
	sleep(atoi(argv[4]));
	stop = 1;
	for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
	printf("decoy=%ld own=%ld failed=%ld other=%ld\n", decoy, own, failed, other);
	return 0;
}
