/* Record (POSIX) and OFD locks taken from several threads at once, each on
 * an fd of its own on one file, as LTP's fcntl36 does: OFD writers fill a
 * range under a write lock, OFD readers check it is never torn under a read
 * lock, POSIX lockers take and drop read locks all along (the threads'
 * POSIX locks are all the process's: one's unlock drops the others', so
 * they are not checked for torn reads, only for failed calls).
 * Prints the number of failed calls and of torn reads (both 0 on Linux).
 * Usage: lock_threads FILE */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SIZE 4096
#define ROUNDS 300
static const char *path;
static int failed, torn;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void count(int *what) { pthread_mutex_lock(&mu); (*what)++; pthread_mutex_unlock(&mu); }

static void *worker(void *arg)
{
	long kind = (long)arg;                  /* 1 ofd writer, 2 posix reader, 3 ofd reader */
	int ofd = kind & 1, reader = kind >= 2;
	int fd = open(path, O_RDWR);
	if (fd < 0) { count(&failed); return 0; }
	unsigned char buf[SIZE];
	for (int i = 0; i < ROUNDS; i++) {
		struct flock l = { .l_type = reader ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = SIZE };
		if (fcntl(fd, ofd ? F_OFD_SETLKW : F_SETLKW, &l)) { count(&failed); continue; }
		if (reader) {
			if (pread(fd, buf, SIZE, 0) != SIZE) count(&failed);
			for (int j = 1; ofd && j < SIZE; j++) if (buf[j] != buf[0]) { count(&torn); break; }
		} else {
			memset(buf, (int)(kind * 64 + i % 60), SIZE);
			if (pwrite(fd, buf, SIZE, 0) != SIZE) count(&failed);
		}
		l.l_type = F_UNLCK;
		if (fcntl(fd, ofd ? F_OFD_SETLK : F_SETLK, &l)) count(&failed);
		sched_yield();
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) return 2;
	path = argv[1];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	char zero[SIZE] = { 0 };
	if (fd < 0 || write(fd, zero, SIZE) != SIZE) return 3;
	close(fd);
	pthread_t t[8];
	for (long i = 0; i < 8; i++) pthread_create(&t[i], 0, worker, (void *)(1 + i % 3));
	for (int i = 0; i < 8; i++) pthread_join(t[i], 0);
	printf("failed %d torn %d\n", failed, torn);
	return 0;
}
