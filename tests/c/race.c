/* Races a directory against a symlink while other threads open, exec or
 * chdir through it.  Usage: race open|exec|chdir|fresh DIR SECONDS
 * (fresh: new images of this program, each opening through it at once
 * from two threads -- the first calls of an image, made before it has a
 * staging area; the program runs itself as `race first DIR`)
 *
 * DIR/d flips between a real directory (holding "secret" = "decoy" and an
 * executable "prog") and a symlink to "../../..", which would lead outside the
 * sandbox's root if the host kernel ever followed it unconfined.  Prints how
 * many opens (or execs) saw the decoy, failed, and saw anything else. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char real[4096], link_[4096], d[4096];
static volatile int stop;
static long decoy, failed, other;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *flipper(void *arg)
{
	for (unsigned i = 0; !stop; i++) {
		rename(real, d);            /* d is the directory */
		/* Mostly flip as fast as possible (the check-then-use races); now
		 * and then hold each state a moment, so that an exec, which takes
		 * the Sentry's lookup and then the kernel's, can see either one
		 * whatever the order the Sentry serves stops in. */
		if (i % 8 == 0) usleep(200);
		rename(d, real);
		symlink("../../..", d);     /* d is the way out */
		if (i % 8 == 4) usleep(200);
		unlink(d);
	}
	return arg;
}

/* Reads what `path` holds (relative to the cwd or not) and counts it. */
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
		else { other++; fprintf(stderr, "read other: %s", buf); }
	}
	pthread_mutex_unlock(&mu);
}

static void *chdirer(void *arg)
{
	while (!stop) {
		if (chdir(d)) { pthread_mutex_lock(&mu); failed++; pthread_mutex_unlock(&mu); continue; }
		read_and_count("secret");
		chdir("/");
	}
	return arg;
}

static void *opener(void *arg)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/secret", d);
	while (!stop) read_and_count(path);
	return arg;
}

/* `race first DIR`: a new image's first calls, from two threads at once. */
static void *first_open(void *arg)
{
	char buf[64];
	int fd = open(arg, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	if (!strcmp(buf, "decoy\n")) write(1, "decoy\n", 6);
	else if (fd < 0) write(1, "failed\n", 7);
	else { write(1, "other: ", 7); write(1, buf, strlen(buf)); write(1, "\n", 1); }
	return arg;
}

/* Run path with argv, its stdout a pipe: what it printed (at most size - 1
 * bytes, NUL-terminated) once it has exited. */
static void run_reading(const char *path, char *const argv[], char *out, size_t size)
{
	int p[2];
	pipe(p);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		execv(path, argv);
		_exit(127);
	}
	close(p[1]);
	size_t got = 0;
	ssize_t n;
	while (got < size - 1 && (n = read(p[0], out + got, size - 1 - got)) > 0) got += n;
	out[got] = 0;
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
}

static void count_lines(const char *out)
{
	for (const char *line = out; *line; ) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (len == 5 && !strncmp(line, "decoy", 5)) decoy++;
		else if (len == 6 && !strncmp(line, "failed", 6)) failed++;
		else { other++; fprintf(stderr, "fresh image printed: %.*s\n", (int)len, line); }
		line += len + (end != 0);
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "first")) {
		char path[4200];
		pthread_t t;
		snprintf(path, sizeof path, "%s/d/secret", argv[2]);
		pthread_create(&t, 0, first_open, path);
		first_open(path);
		pthread_join(t, 0);
		return 0;
	}
	if (argc < 4) return 2;
	int do_exec = !strcmp(argv[1], "exec"), fresh = !strcmp(argv[1], "fresh");
	snprintf(real, sizeof real, "%s/real", argv[2]);
	snprintf(d, sizeof d, "%s/d", argv[2]);
	int seconds = atoi(argv[3]);
	pthread_t f, o[2];
	pthread_create(&f, 0, flipper, 0);
	time_t end = time(0) + seconds;
	if (fresh) {
		char *const first[] = { "race", "first", argv[2], 0 };
		while (time(0) < end) {
			char out[256];
			run_reading("/proc/self/exe", first, out, sizeof out);
			count_lines(out);
		}
		stop = 1;
	} else if (!do_exec) {
		int by_chdir = !strcmp(argv[1], "chdir");
		for (int i = 0; i < 2; i++) pthread_create(&o[i], 0, by_chdir && i == 0 ? chdirer : opener, 0);
		while (time(0) < end) usleep(100000);
		stop = 1;
		for (int i = 0; i < 2; i++) pthread_join(o[i], 0);
	} else {
		char path[4200];
		snprintf(path, sizeof path, "%s/prog", d);
		char *const prog[] = { "prog", 0 };
		while (time(0) < end) {
			char buf[64];
			run_reading(path, prog, buf, sizeof buf);
			if (!strcmp(buf, "decoy\n")) decoy++;
			else if (!buf[0]) failed++;
			else { other++; fprintf(stderr, "exec printed: %s", buf); }
		}
		stop = 1;
	}
	pthread_join(f, 0);
	printf("decoy=%ld failed=%ld other=%ld\n", decoy, failed, other);
	return 0;
}
