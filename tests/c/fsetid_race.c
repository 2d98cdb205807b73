/* Racing threads against CAP_FSETID's kept bits (issue 13): root writes to
 * one fd number while another thread turns that number between a 06755 file
 * and a 0644 one (dup2).  The 0644 file must never gain a set-id bit (the
 * Sentry restores bits only on the file it checked, and only those the
 * write cleared); the set-id file may keep or lose its bits (a write that
 * lands on it after the check saw the other file clears them, as for a
 * process without the capability).  Usage: fsetid_race DIR */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define FD 50
#define ROUNDS 3000

static int setid_fd, plain_fd;
static atomic_int done;

static void *flipper(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		dup2((random() & 1) ? setid_fd : plain_fd, FD);
		for (volatile int i = random() % 3000; i > 0; i--) ;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2 || chdir(argv[1])) return 1;
	umask(0);
	setid_fd = open("setid", O_CREAT | O_RDWR | O_TRUNC, 06755);
	plain_fd = open("plain", O_CREAT | O_RDWR | O_TRUNC, 0644);
	dup2(setid_fd, FD);                 /* the number is trapped from its open's copy */
	pthread_t t;
	pthread_create(&t, NULL, flipper, NULL);
	int gained = 0;
	for (int i = 0; i < ROUNDS; i++) {
		write(FD, "x", 1);
		struct stat st;
		fstat(plain_fd, &st);
		if (st.st_mode & 06000) gained++;
		if (i % 100 == 0) fchmod(setid_fd, 06755);
	}
	atomic_store(&done, 1);
	pthread_join(t, NULL);
	struct stat st;
	fstat(plain_fd, &st);
	printf("plain file gained a set-id bit: %d times, now %04o\n", gained, st.st_mode & 07777);
	unlink("setid");
	unlink("plain");
	return 0;
}
