/* Scans System V IPC ids 0..MAX for the host's objects: every way a guest
 * could reach one by id alone (attach, stat, control, send, receive).
 * Prints one line per call kind: how many ids it reached, and the errno of
 * the last refusal; "TOKEN" wherever a host token was read.
 * Usage: hostobj_sysv MAX [ID...]: ids 0..MAX, then each ID (the host's
 * own, which a scan would find in time). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

struct counter { const char *name; int reached; int last_errno; };

int main(int argc, char **argv)
{
	int max = argc > 1 ? atoi(argv[1]) : 1024;
	struct counter shmat_c = { "shmat" }, shmat_rw = { "shmat rw" }, shmctl_c = { "shmctl" },
		semctl_c = { "semctl" }, semop_c = { "semop" }, msgctl_c = { "msgctl" },
		msgrcv_c = { "msgrcv" }, msgsnd_c = { "msgsnd" };
	for (int i = 0; i <= max + argc - 2; i++) {
		int id = i <= max ? i : atoi(argv[i - max + 1]);
		void *p = shmat(id, NULL, SHM_RDONLY);
		if (p != (void *)-1) {
			shmat_c.reached++;
			if (strstr((char *)p, "TOKEN")) printf("shm %d: %s\n", id, (char *)p);
			shmdt(p);
		} else shmat_c.last_errno = errno;
		p = (void *)syscall(SYS_shmat, id, 0, 0);     /* read-write, raw */
		if (p != (void *)-1) {
			shmat_rw.reached++;
			strcpy((char *)p, "GUEST WAS HERE");
			shmdt(p);
		} else shmat_rw.last_errno = errno;
		struct shmid_ds ds;
		if (shmctl(id, IPC_STAT, &ds) == 0) shmctl_c.reached++; else shmctl_c.last_errno = errno;
		int v = semctl(id, 0, GETVAL);
		if (v >= 0) { semctl_c.reached++; printf("sem %d: value %d\n", id, v); }
		else semctl_c.last_errno = errno;
		struct sembuf op = { 0, -1, IPC_NOWAIT };
		if (semop(id, &op, 1) == 0) semop_c.reached++; else semop_c.last_errno = errno;
		struct msqid_ds mq;
		if (msgctl(id, IPC_STAT, &mq) == 0) msgctl_c.reached++; else msgctl_c.last_errno = errno;
		struct { long type; char text[64]; } msg;
		memset(&msg, 0, sizeof msg);
		ssize_t n = msgrcv(id, &msg, sizeof msg.text, 0, IPC_NOWAIT | MSG_NOERROR);
		if (n >= 0) { msgrcv_c.reached++; printf("msg %d: %s\n", id, msg.text); }
		else msgrcv_c.last_errno = errno;
		msg.type = 1;
		strcpy(msg.text, "GUEST WAS HERE");
		if (msgsnd(id, &msg, 16, IPC_NOWAIT) == 0) msgsnd_c.reached++; else msgsnd_c.last_errno = errno;
	}
	struct counter *all[] = { &shmat_c, &shmat_rw, &shmctl_c, &semctl_c, &semop_c, &msgctl_c, &msgrcv_c, &msgsnd_c };
	for (unsigned i = 0; i < sizeof all / sizeof *all; i++)
		printf("%s: reached %d, %s\n", all[i]->name, all[i]->reached,
		       all[i]->last_errno ? strerrorname_np(all[i]->last_errno) : "-");
	/* and making one of its own */
	int id = shmget(IPC_PRIVATE, 4096, 0600);
	printf("shmget: %s\n", id >= 0 ? "ok" : strerrorname_np(errno));
	if (id >= 0) shmctl(id, IPC_RMID, NULL);
	return 0;
}
