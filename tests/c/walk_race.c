/* Races the names a path walk goes through while threads open paths made
 * of them: "..", ".", "//", relative and absolute symlinks.
 * Usage: walk_race DIR HOSTDIR SECONDS
 *
 * DIR/real is a directory holding "secret" = "decoy".  While the readers
 * run, a flipper keeps changing, one after another:
 *   DIR/d    a directory (DIR/real renamed) / a symlink to "../../..";
 *   DIR/lnk  a symlink to "real" / to "../../..";
 *   DIR/abs  a symlink to DIR/real / to HOSTDIR (an absolute host path).
 * Inside the sandbox "../../.." stops at its root and HOSTDIR does not
 * exist, so every open reads "decoy" or fails; on the host, "../../.."
 * and HOSTDIR lead to a directory whose "secret" is something else.  Prints
 * how many opens saw the decoy, failed, and saw anything else. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[2048], real[4096], d[4096], lnk[4096], abs_[4096], host[2048];
static volatile int stop;
static long decoy, failed, other;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void flip_link(const char *path, const char *to)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.new", path);
	unlink(tmp);
	symlink(to, tmp);
	rename(tmp, path);          /* atomically, as an attacker would */
}

static void *flipper(void *arg)
{
	for (unsigned i = 0; !stop; i++) {
		rename(real, d);                        /* d is the directory */
		flip_link(lnk, "../../..");
		if (i % 8 == 0) usleep(200);
		rename(d, real);
		symlink("../../..", d);              /* d is the way out */
		flip_link(lnk, "real");
		flip_link(abs_, host);
		if (i % 8 == 4) usleep(200);
		unlink(d);
		flip_link(abs_, real);
	}
	return arg;
}

static void read_and_count(const char *path)
{
	char buf[64];
	int fd = open(path, O_RDONLY);
	pthread_mutex_lock(&mu);
	if (fd < 0) {
		failed++;
	} else {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		buf[n > 0 ? n : 0] = 0;
		if (!strcmp(buf, "decoy\n")) decoy++;
		else { other++; fprintf(stderr, "%s read: %s", path, buf); }
	}
	pthread_mutex_unlock(&mu);
}

static const char *paths[] = {
	"%s/d/secret", "%s/d/../real/secret", "%s/d/./secret", "%s//d//secret",
	"%s/real/../d/secret", "%s/lnk/secret", "%s/lnk/../real/secret", "%s/lnk/./secret/",
	"%s/abs/secret", "%s/abs/../real/secret", "%s/d/../../race/lnk/secret",
	/* relative to the cwd (DIR) */
	"d/secret", "lnk/secret", "./abs/secret", "d/../lnk/secret",
};
#define NPATHS (sizeof paths / sizeof paths[0])

static void *reader(void *arg)
{
	long k = (long)arg;
	char path[4200];
	for (unsigned i = 0; !stop; i++) {
		snprintf(path, sizeof path, paths[(i + k) % NPATHS], dir);
		read_and_count(path);
	}
	return arg;
}

int main(int argc, char **argv)
{
	if (argc < 4) return 2;
	snprintf(dir, sizeof dir, "%s", argv[1]);
	snprintf(host, sizeof host, "%s", argv[2]);
	snprintf(real, sizeof real, "%s/real", dir);
	snprintf(d, sizeof d, "%s/d", dir);
	snprintf(lnk, sizeof lnk, "%s/lnk", dir);
	snprintf(abs_, sizeof abs_, "%s/abs", dir);
	if (chdir(dir)) return 3;
	flip_link(lnk, "real");
	flip_link(abs_, real);
	int seconds = atoi(argv[3]);
	pthread_t f, r[3];
	pthread_create(&f, 0, flipper, 0);
	for (long i = 0; i < 3; i++) pthread_create(&r[i], 0, reader, (void *)(i * 5));
	time_t end = time(0) + seconds;
	while (time(0) < end) usleep(100000);
	stop = 1;
	for (int i = 0; i < 3; i++) pthread_join(r[i], 0);
	pthread_join(f, 0);
	printf("decoy=%ld failed=%ld other=%ld\n", decoy, failed, other);
	return 0;
}
