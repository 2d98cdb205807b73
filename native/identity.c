/*
 * The identity fast path: getpid and its kin answered without Python.
 *
 * These calls only read the caller's own ids, which the guest asks for all
 * the time (glibc, shells, every logger).  The Sentry's answer is virtual (a
 * pid in the sandbox's namespace, an emulated uid), so they trap; Python keeps
 * one row per task here, current at every change (sentry/kernel/publish.py
 * publishes it), and a task without a row goes to Python, which knows it too.
 * Calls that return a host pid (fork's parent, wait4, set_tid_address) run
 * and have their result translated at their syscall-exit stop, here too.
 * A process's row outlives it until it is reaped: wait4 names zombies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "tracer.h"
#include "tidtable.h"

#define IDENT_TABLE 16384
/* exit_pid: the call in progress returns a host pid, to be given back as
 * the sandbox's at its syscall-exit stop (fork, wait4, set_tid_address) */
static struct { int tid; int exit_pid; sn_ident id; } rows[IDENT_TABLE];

static int row_index(int tid)
{
	return tid_find(rows, sizeof rows[0], IDENT_TABLE, tid);
}

void sn_set_ident(int tid, const sn_ident *id)
{
	int i = row_index(tid);
	if (i >= 0 && id) { rows[i].id = *id; return; }
	if (i >= 0) {
		rows[i].exit_pid = 0;
		rows[i].tid = -1;               /* tombstone */
	}
	if (!id) return;
	i = tid_claim(rows, sizeof rows[0], IDENT_TABLE, tid);
	if (i >= 0) {                       /* full: this task's calls go to Python */
		rows[i].exit_pid = 0;
		rows[i].id = *id;
	}
}

static int write_ids(int tid, sn_regs *r, uint32_t a, uint32_t b, uint32_t c)
{
	uint64_t addr[3] = { r->rdi, r->rsi, r->rdx };
	uint32_t val[3] = { a, b, c };
	for (int i = 0; i < 3; i++)
		if (sn_write_vm(tid, addr[i], &val[i], 4) != 4) return -EFAULT;
	return 0;
}

/* Fails closed: a task without a row (not published yet, or lost) has its
 * file calls checked in Python, never waved through unchecked. */
int sn_ident_checks_files(int tid)
{
	int i = row_index(tid);
	return i < 0 || rows[i].id.checks_files;
}

/* Fails closed as well: a task that may have a root of its own has its
 * paths resolved from that root in Python (syscalls/lookup.py). */
int sn_ident_chrooted(int tid)
{
	int i = row_index(tid);
	return i < 0 || rows[i].id.chrooted;
}

/* Fails closed too: an O_CREAT open that may create goes to Python, which
 * gives the new file its creator's ids (syscalls/owner.py). */
int sn_ident_foreign_creator(int tid)
{
	int i = row_index(tid);
	return i < 0 || rows[i].id.foreign_creator;
}

/* Fails closed: a task without a row has its chown checked in Python. */
int sn_ident_chown_any(int tid)
{
	int i = row_index(tid);
	return i >= 0 && rows[i].id.chown_any;
}

int sn_exit_pending(int tid)
{
	int i = row_index(tid);
	return i >= 0 && rows[i].exit_pid;
}

/* Python asks for the exit of the call in progress (a fork it saw). */
int sn_exit_pid(int tid)
{
	int i = row_index(tid);
	if (i < 0) return 0;
	rows[i].exit_pid = 1;
	return 1;
}

static int dumping_signal(int sig)
{
	switch (sig) {
	case SIGQUIT: case SIGILL: case SIGTRAP: case SIGABRT: case SIGBUS: case SIGFPE:
	case SIGSEGV: case SIGXCPU: case SIGXFSZ: case SIGSYS:
		return 1;
	}
	return 0;
}

/* A wait status the kernel wrote at `addr`: a death by a core-dumping
 * signal gets the core-dump bit (WCOREDUMP) that Linux would have set had
 * it written the core the child's RLIMIT_CORE allowed.  The status word is
 * the guest's own memory: a thread changing it meanwhile changes only what
 * it reads itself. */
void sn_mark_core_dump(int tid, uint64_t addr)
{
	int st;
	if (sn_read_mem(tid, addr, &st, sizeof st) != sizeof st) return;
	int sig = st & 0x7f;
	if (sig == 0 || sig == 0x7f || !dumping_signal(sig) || (st & 0x80)) return;
	st |= 0x80;
	sn_write_vm(tid, addr, &st, sizeof st);
}

/* At a syscall-exit stop: a host pid result becomes the sandbox's (0 for
 * a process the sandbox does not know, as Linux shows one outside the
 * namespace).  Returns 1 when answered here. */
int sn_ident_exit(int tid, sn_regs *r)
{
	int i = row_index(tid);
	if (i < 0 || !rows[i].exit_pid) return 0;
	rows[i].exit_pid = 0;
	long result = (long)r->rax;
	if (result > 0) {
		int j = row_index((int)result);
		r->rax = j >= 0 ? (uint64_t)rows[j].id.vtid : 0;
		ptrace(PTRACE_SETREGS, tid, 0, r);
		if (j >= 0 && rows[j].id.dumps_core && r->orig_rax == SYS_wait4 && r->rsi)
			sn_mark_core_dump(tid, r->rsi);
	}
	ptrace(PTRACE_CONT, tid, 0, 0);
	return 1;
}

int sn_ident_answer(int tid, sn_regs *r)
{
	long v;
	switch (r->orig_rax) {
	case SYS_getpid: case SYS_gettid: case SYS_getppid: case SYS_getpgrp:
	case SYS_getuid: case SYS_geteuid: case SYS_getgid: case SYS_getegid:
	case SYS_getresuid: case SYS_getresgid: case SYS_set_tid_address: case SYS_wait4:
		break;
	default:
		return 0;
	}
	int i = row_index(tid);
	if (i < 0) return 0;
	if (r->orig_rax == SYS_set_tid_address || r->orig_rax == SYS_wait4) {
		/* wait4 for any child (-1) or one of the caller's group (0): no pid
		 * to translate on the way in; others go to Python */
		if (r->orig_rax == SYS_wait4 && (int)r->rdi != -1 && (int)r->rdi != 0) return 0;
		rows[i].exit_pid = 1;
		ptrace(PTRACE_SYSCALL, tid, 0, 0);
		return 1;
	}
	const sn_ident *id = &rows[i].id;
	switch (r->orig_rax) {
	case SYS_getpid: v = id->vpid; break;
	case SYS_gettid: v = id->vtid; break;
	case SYS_getppid: v = id->vppid; break;
	case SYS_getpgrp: v = id->vpgrp; break;
	case SYS_getuid: v = id->ruid; break;
	case SYS_geteuid: v = id->euid; break;
	case SYS_getgid: v = id->rgid; break;
	case SYS_getegid: v = id->egid; break;
	case SYS_getresuid: v = write_ids(tid, r, id->ruid, id->euid, id->suid); break;
	default: v = write_ids(tid, r, id->rgid, id->egid, id->sgid); break;
	}
	sn_answer(tid, r, v);
	return 1;
}
