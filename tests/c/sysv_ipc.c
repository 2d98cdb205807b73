/* System V IPC between processes of one sandbox, as Linux runs it: a shared
 * memory segment a child writes and the parent reads, a semaphore the child
 * posts and the parent waits on, messages both ways, IPC_STAT/IPC_INFO and
 * removal.  Prints a deterministic transcript (the ids and the keys' objects
 * of a fresh IPC namespace).  Usage: sysv_ipc KEY [STAGING_ADDR]
 * With STAGING_ADDR: shmat(SHM_REMAP) there and just below it, which must
 * never replace the Sentry's staging area. */
#include "transcript.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

struct msg { long type; char text[32]; };
union semun { int val; struct semid_ds *buf; unsigned short *array; };

int main(int argc, char **argv)
{
	if (argc < 2) return 2;
	setvbuf(stdout, 0, _IONBF, 0);
	key_t key = (key_t)strtol(argv[1], 0, 0);
	if (argc > 2) {
		uintptr_t at = (uintptr_t)strtoull(argv[2], 0, 0);
		int id = shmget(IPC_PRIVATE, 1 << 16, 0600);
		T(id >= 0);
		T((long)shmat(id, (void *)at, SHM_REMAP));
		T((long)shmat(id, (void *)(at - 4096), SHM_REMAP));
		T((long)shmat(id, (void *)(at - (1 << 16)), SHM_REMAP | SHM_RND));
		T((long)shmat(id, (void *)at, 0));
		T((long)shmat(id, (void *)(at - (1UL << 39)), 0));
		/* no segment spans a terabyte: none reaches the area from below it */
		T(shmget(IPC_PRIVATE, (1UL << 40) + 4096, 0600));
		T(shmget(IPC_PRIVATE, 1UL << 30, 0600) >= 0);
		T(shmctl(id, IPC_RMID, 0));
		return 0;
	}
	printf("-- a key of the host or of another sandbox names nothing here\n");
	T(shmget(key, 0, 0)); T(semget(key, 0, 0)); T(msgget(key, 0));

	printf("-- shared memory\n");
	int shm = shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600);
	T(shm >= 0);
	T(shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600));
	char *mem = shmat(shm, 0, 0);
	T(mem != (void *)-1);
	struct shmid_ds ds;
	T(shmctl(shm, IPC_STAT, &ds));
	printf("size %zu nattch %lu mode %o\n", ds.shm_segsz, (unsigned long)ds.shm_nattch, ds.shm_perm.mode & 0777);

	printf("-- a semaphore set\n");
	int sem = semget(key, 2, IPC_CREAT | 0600);
	T(sem >= 0);
	T(semctl(sem, 0, SETVAL, (union semun){ .val = 0 }));
	struct sembuf nowait = { 0, -1, IPC_NOWAIT };
	T(semop(sem, &nowait, 1));

	printf("-- a message queue\n");
	int msq = msgget(key, IPC_CREAT | 0600);
	T(msq >= 0);

	pid_t c = fork();
	if (c == 0) {
		char *m = shmat(shm, 0, 0);
		strcpy(m, "written by the child");
		struct msg out = { 2, "hello parent" };
		msgsnd(msq, &out, sizeof out.text, 0);
		struct sembuf post = { 0, 1, 0 };
		semop(sem, &post, 1);
		struct msg in;
		msgrcv(msq, &in, sizeof in.text, 1, 0);
		printf("child got: %s\n", in.text);
		_exit(0);
	}
	struct sembuf wait1 = { 0, -1, 0 };
	T(semop(sem, &wait1, 1));
	printf("parent reads: %s\n", mem);
	struct msg in, out = { 1, "hello child" };
	T(msgrcv(msq, &in, sizeof in.text, 2, 0));
	printf("parent got: %s\n", in.text);
	long sent = msgsnd(msq, &out, sizeof out.text, 0);
	int st;
	waitpid(c, &st, 0);           /* the child prints what it got first */
	T(sent);
	status("child", st);
	T(semctl(sem, 0, GETVAL));
	struct msqid_ds mds;
	T(msgctl(msq, IPC_STAT, &mds));
	printf("queue: %lu messages\n", (unsigned long)mds.msg_qnum);
	struct timespec ts = { 0, 10000000 };
	T(semtimedop(sem, &nowait, 1, &ts));

	printf("-- removal\n");
	T(shmdt(mem));
	T(shmctl(shm, IPC_RMID, 0));
	T(semctl(sem, 0, IPC_RMID));
	T(msgctl(msq, IPC_RMID, 0));
	T(shmget(key, 0, 0)); T(semget(key, 0, 0)); T(msgget(key, 0));
	return 0;
}
